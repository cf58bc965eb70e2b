# %% [markdown]
# # ptsynth walkthrough: from case records to a publishable bundle
#
# This notebook (a plain Python file in Jupyter "percent" format: open it with Jupyter +
# jupytext, VS Code or PyCharm, or run it with `python notebooks/walkthrough.py`) goes through
# a release on the built-in demo data: made-up CTDC-like case records, not real people.
# CI runs it top to bottom (`tests/test_notebooks.py`).

# %%
import json
import tempfile
from pathlib import Path

import ptsynth
from ptsynth.demo import demo_config_path

work = Path(tempfile.mkdtemp(prefix="ptsynth-walkthrough-"))

# %% [markdown]
# ## 1. Data and schema
# The schema (TOML) declares each column's kind and its **public** domain. Nothing about the
# domains is read from the data, so they cost no privacy budget.

# %%
data = work / "cases.csv"
ptsynth.generate_demo(5_000, 42, data)
config = ptsynth.ReleaseConfig.load(demo_config_path())
table = ptsynth.read_records(data, config.schema)  # validates and encodes; spends nothing
print(f"{table.n_records} persons, {table.n_columns} encoded columns")

# %% [markdown]
# ## 2. Plan the budget before touching the data
# `plan` reads only the config: the zCDP budget ρ that (ε, δ) buys and the standard deviation of
# the noise on every released count, per combination length.

# %%
plan = ptsynth.plan(config, epsilon=1.0)
print(f"epsilon=1 -> rho={plan['rho']:.5f}")
for row in plan.get("lengths", []):
    print(row)

# %% [markdown]
# ## 3. Release
# A real release draws its noise from the operating system's CSPRNG (`seed=None`). Here we pass
# a seed so that the notebook is reproducible: the ledger and the manifest then say
# "NOT FOR RELEASE".

# %%
rel = ptsynth.release(data, config, work / "bundle", epsilon=1.0, seed=7)
print(rel)
print(sorted(p.name for p in rel.out_dir.iterdir()))
rel.synthetic.head()

# %% [markdown]
# ## 4. What was spent
# Every measurement is one ledger entry; CI asserts the total with `assert_budget` or
# `ptsynth budget check`.

# %%
ledger = json.loads((rel.out_dir / "budget.json").read_text())
for entry in ledger["entries"]:
    print(f"{entry['mechanism']:>20}  rho={entry['rho']:.5f}  {entry['query'][:60]}")
# This bundle is seeded (a test run), which `budget check` refuses unless told it is a test.
ptsynth.assert_budget(rel.out_dir, max_epsilon=1.0, max_delta=1e-6, allow_seeded=True)

# %% [markdown]
# ## 5. How good, how risky (private: for the data steward only)

# %%
report = rel.report
print(json.dumps(report["summary"], indent=1)[:2000])
