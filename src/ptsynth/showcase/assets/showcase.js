/* ptsynth showcase: an offline explorer of one differentially private release.
 *
 * Every number on the page comes from the rule of ptsynth.query.count, ported line by line:
 * a released DP aggregate where one answers the selection exactly, else the published
 * graphical model's expected count (Hugin evidence propagation on its junction tree, as
 * ptsynth.synth.graphical.evidence), else the synthetic records' count; intervals and the
 * "fewer than k" suppression as there. No library, no network: charts are hand-written SVG.
 */
(function () {
  'use strict';
  var T0 = performance.now();
  var H = null, BUF = null, BASE = 0;
  var state = { where: {}, tab: 'explore', tables: {}, geo: 0, xa: null, xb: null };
  var api = { ready: false, renders: 0, lastRenderMs: null, loadMs: null, error: null };
  window.ptsynthShowcase = api;

  // ---------------------------------------------------------------------------------------
  // loading: base64 -> gzip -> container (JSON header + 8-byte aligned arrays)
  // ---------------------------------------------------------------------------------------
  function b64decode(s) {
    var lut = new Uint8Array(128), chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (var i = 0; i < 64; i++) lut[chars.charCodeAt(i)] = i;
    var n = s.length; while (n > 0 && s.charCodeAt(n - 1) === 61) n--;
    var out = new Uint8Array((n * 3) >> 2), o = 0, j = 0;
    for (; j + 4 <= n; j += 4) {
      var v = (lut[s.charCodeAt(j)] << 18) | (lut[s.charCodeAt(j + 1)] << 12) | (lut[s.charCodeAt(j + 2)] << 6) | lut[s.charCodeAt(j + 3)];
      out[o++] = v >> 16; out[o++] = (v >> 8) & 255; out[o++] = v & 255;
    }
    if (n - j === 2) { out[o++] = ((lut[s.charCodeAt(j)] << 2) | (lut[s.charCodeAt(j + 1)] >> 4)) & 255; }
    else if (n - j === 3) {
      var w = (lut[s.charCodeAt(j)] << 10) | (lut[s.charCodeAt(j + 1)] << 4) | (lut[s.charCodeAt(j + 2)] >> 2);
      out[o++] = (w >> 8) & 255; out[o++] = w & 255;
    }
    return out;
  }
  var TYPES = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, int32: Int32Array, float64: Float64Array };
  function blob(ref) {
    var s = H.blobs[ref.blob];
    return new TYPES[s.dtype](BUF, BASE + s.offset, s.length);
  }
  async function load() {
    var el = document.getElementById('ptsynth-data');
    var bytes = b64decode(el.textContent.trim());
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    BUF = await new Response(stream).arrayBuffer();
    var dv = new DataView(BUF), headLen = dv.getUint32(0, true), version = dv.getUint32(4, true);
    if (version !== 1) throw new Error('unknown data version ' + version);
    H = JSON.parse(new TextDecoder().decode(new Uint8Array(BUF, 8, headLen)));
    BASE = 8 + headLen;
  }

  // ---------------------------------------------------------------------------------------
  // the query engine (ptsynth.query)
  // ---------------------------------------------------------------------------------------
  var Z = 1.959963984540054, K = 0, CODES = [], N = 0;
  function terms(where, skip) {
    // where: {colIndex: [labelIndex,...]} -> terms sorted by column (as ptsynth.query.Selection)
    var out = [];
    Object.keys(where).map(Number).sort(function (a, b) { return a - b; }).forEach(function (ci) {
      if (skip && skip.indexOf(ci) >= 0) return;
      var vals = where[ci]; if (!vals || !vals.length) return;
      out.push(term(ci, vals));
    });
    return out;
  }
  function term(ci, vals) {
    var col = H.columns[ci];
    if (col.kind === 'set') return { ci: ci, vals: vals, isSet: true, enc: vals.map(function (v) { return col.enc[v]; }), codes: [] };
    return { ci: ci, vals: vals, isSet: false, enc: [col.enc[0]], codes: vals };
  }
  function sortTerms(ts) { return ts.slice().sort(function (a, b) { return a.ci - b.ci; }); }

  // -- released DP aggregates ----------------------------------------------------------
  var AGG = null;
  function initAggregates() {
    var a = H.aggregates; if (!a) return;
    AGG = { L: a.L, offsets: a.offsets, lengths: {} };
    Object.keys(a.lengths).forEach(function (l) {
      var spec = a.lengths[l], ell = Number(l), ids = blob(spec.ids), counts = blob(spec.counts), map = new Map();
      for (var i = 0; i < counts.length; i++) {
        var key = ids[i * ell]; for (var j = 1; j < ell; j++) key += ',' + ids[i * ell + j];
        map.set(String(key), counts[i]);
      }
      AGG.lengths[ell] = { sigma: spec.sigma, threshold: spec.threshold, bias: spec.bias, map: map, ids: ids, counts: counts };
    });
  }
  function aggAnswer(ts) {
    if (!AGG) return null;
    var ell = ts.length, spec = AGG.lengths[ell];
    if (!spec || ell < 1 || ell > AGG.L) return null;
    for (var i = 0; i < ts.length; i++) if (ts[i].isSet && ts[i].vals.length > 1) return null;
    var per = ts.map(function (t) {
      if (t.isSet) return [AGG.offsets[t.enc[0]]];
      return t.codes.map(function (c) { return AGG.offsets[t.enc[0]] + c; });
    });
    var cells = [[]];
    per.forEach(function (opts) {
      var next = []; cells.forEach(function (c) { opts.forEach(function (g) { next.push(c.concat([g])); }); }); cells = next;
    });
    var released = [];
    cells.forEach(function (c) {
      var ids = c.slice().sort(function (a, b) { return a - b; });
      var v = spec.map.get(ids.join(','));
      if (v !== undefined) released.push(v);
    });
    if (cells.length === 1 && !released.length)
      return { value: 0, low: 0, high: spec.threshold, source: 'dp_aggregate', suppressed: true,
               note: 'not released: its noisy count fell below the release threshold' };
    if (released.length !== cells.length) return null;
    var value = 0; released.forEach(function (v) { value += v; });
    var se = spec.sigma * Math.sqrt(cells.length), bias = spec.bias;
    return { value: value, low: Math.max(value - Z * se, 0), high: value + Z * se + value * bias / (1 - bias),
             source: 'dp_aggregate', suppressed: false,
             note: 'released DP aggregate (noise sd ' + fmtSig(spec.sigma) + ' per count' + (cells.length > 1 ? ', ' + cells.length + ' disjoint counts summed' : '') + ')' };
  }

  // -- the graphical model -------------------------------------------------------------
  var M = null;
  function initModel() {
    var m = H.model; if (!m) return;
    var nc = m.cliques.length;
    M = { total: m.total, sizes: m.sizes, cliques: m.cliques, parent: m.parent, order: m.order, home: m.home,
          probs: m.probs.map(blob), forward: m.forward.map(blob), expand: m.expand.map(blob),
          meas: m.measurements, strides: [], cells: [], mapC: [], mapP: [], sepSize: [], sepProb: [] };
    for (var c = 0; c < nc; c++) {
      var cl = m.cliques[c], st = new Array(cl.length), s = 1;
      for (var a = cl.length - 1; a >= 0; a--) { st[a] = s; s *= m.sizes[cl[a]]; }
      M.strides.push(st); M.cells.push(s);
    }
    for (c = 0; c < nc; c++) {
      var sep = m.separators[c];
      M.mapC.push(indexMap(c, sep));
      M.sepSize.push(sep.reduce(function (x, v) { return x * m.sizes[v]; }, 1));
      M.mapP.push(m.parent[c] >= 0 ? indexMap(m.parent[c], sep) : null);
      var sp = new Float64Array(M.sepSize[c]), p = M.probs[c], mc = M.mapC[c];
      for (var i = 0; i < p.length; i++) sp[mc[i]] += p[i];
      M.sepProb.push(sp);
    }
  }
  function indexMap(c, keep) {
    // cell of clique c -> index in the row-major table over `keep` (sorted vars)
    var cl = M.cliques[c], st = M.strides[c], n = M.cells[c], out = new Int32Array(n);
    var ks = [], kst = [], s = 1;
    for (var a = keep.length - 1; a >= 0; a--) { kst[a] = s; s *= M.sizes[keep[a]]; }
    keep.forEach(function (v, a) { var pos = cl.indexOf(v); ks.push([st[pos], M.sizes[v], kst[a]]); });
    for (var i = 0; i < n; i++) {
      var idx = 0;
      for (var k = 0; k < ks.length; k++) idx += (((i / ks[k][0]) | 0) % ks[k][1]) * ks[k][2];
      out[i] = idx;
    }
    return out;
  }
  function coordOf(c, v) { var pos = M.cliques[c].indexOf(v); return [M.strides[c][pos], M.sizes[v]]; }
  function hugin(evidence, targets) {
    // evidence: array of [var, Float64Array weights]; returns {total, marg: {var: Float64Array}}
    var nc = M.cliques.length, psi = new Array(nc), c, i;
    for (c = 0; c < nc; c++) psi[c] = M.probs[c].slice();
    evidence.forEach(function (e) {
      var v = e[0], w = e[1], h = M.home[v], sc = coordOf(h, v), t = psi[h];
      for (i = 0; i < t.length; i++) t[i] *= w[((i / sc[0]) | 0) % sc[1]];
    });
    var up = new Array(nc), order = M.order;
    for (var o = order.length - 1; o >= 0; o--) {
      c = order[o]; var p = M.parent[c]; if (p < 0) continue;
      var msg = new Float64Array(M.sepSize[c]), mc = M.mapC[c], pc = psi[c];
      for (i = 0; i < pc.length; i++) msg[mc[i]] += pc[i];
      up[c] = msg;
      var sep = M.sepProb[c], ratio = new Float64Array(msg.length);
      for (i = 0; i < msg.length; i++) ratio[i] = sep[i] > 0 ? msg[i] / sep[i] : 0;
      var mp = M.mapP[c], pp = psi[p];
      for (i = 0; i < pp.length; i++) pp[i] = pp[i] * ratio[mp[i]];
    }
    var root = order[0], total = 0, pr = psi[root];
    for (i = 0; i < pr.length; i++) total += pr[i];
    var res = { total: total, marg: {} };
    if (!targets || !targets.length) return res;
    var onPath = {};
    targets.forEach(function (t) { var x = M.home[t]; while (x >= 0 && !onPath[x]) { onPath[x] = 1; x = M.parent[x]; } });
    for (o = 1; o < order.length; o++) {
      c = order[o]; if (!onPath[c]) continue;
      var par = M.parent[c], down = new Float64Array(M.sepSize[c]), mp2 = M.mapP[c], pp2 = psi[par];
      for (i = 0; i < pp2.length; i++) down[mp2[i]] += pp2[i];
      var u = up[c], mc2 = M.mapC[c], pc2 = psi[c];
      for (i = 0; i < pc2.length; i++) { var uu = u[mc2[i]]; pc2[i] = pc2[i] * (uu > 0 ? down[mc2[i]] / uu : 0); }
    }
    targets.forEach(function (t) {
      var h = M.home[t], sc = coordOf(h, t), tab = psi[h], out = new Float64Array(M.sizes[t]);
      for (i = 0; i < tab.length; i++) out[((i / sc[0]) | 0) % sc[1]] += tab[i];
      res.marg[t] = out;
    });
    return res;
  }
  function modelWeights(j, orig) {
    var w = new Float64Array(M.sizes[j]), f = M.forward[j], e = M.expand[j];
    for (var c = 0; c < f.length; c++) w[f[c]] += orig[c] * e[c];
    return w;
  }
  function origSize(j) { return M.forward[j].length; }
  function evidenceOf(ts) {
    var ev = [], unions = [];
    ts.forEach(function (t) {
      if (t.isSet && t.vals.length > 1) { unions.push(t.enc.slice()); return; }
      var j = t.enc[0], orig = new Float64Array(origSize(j));
      if (t.isSet) orig[0] = 1; else t.codes.forEach(function (c) { orig[c] = 1; });
      ev.push([j, modelWeights(j, orig)]);
    });
    return { ev: ev, unions: unions };
  }
  function absentWeights(j) { var a = new Float64Array(origSize(j)); a[a.length - 1] = 1; return modelWeights(j, a); }
  function subsets(n) {
    var out = [];
    for (var r = 0; r <= n; r++) combos(n, r).forEach(function (s) { out.push(s); });
    return out;
  }
  function combos(n, r) {
    var out = [];
    (function rec(start, acc) {
      if (acc.length === r) { out.push(acc.slice()); return; }
      for (var i = start; i < n; i++) { acc.push(i); rec(i + 1, acc); acc.pop(); }
    })(0, []);
    return out;
  }
  // P(E) and, per target var, P(E, var = model code): inclusion-exclusion over set ORs.
  // One run answers every variable (a full two-pass propagation), cached per selection, so
  // all charts sharing a filter share it.
  var massCache = new Map();
  function modelMassAll(ts) {
    var key = JSON.stringify(ts.map(function (t) { return [t.ci, t.vals]; }));
    var hit = massCache.get(key);
    if (hit) return hit;
    var all = []; for (var v = 0; v < M.sizes.length; v++) all.push(v);
    var res = modelMass(ts, all);
    if (massCache.size > 256) massCache.clear();
    massCache.set(key, res);
    return res;
  }
  function modelMass(ts, targets) {
    var eu = evidenceOf(ts), total = 0, marg = {};
    (targets || []).forEach(function (t) { marg[t] = new Float64Array(M.sizes[t]); });
    subsets(eu.unions.length).forEach(function (sub) {
      var ev = eu.ev.slice();
      sub.forEach(function (u) { eu.unions[u].forEach(function (j) { ev.push([j, absentWeights(j)]); }); });
      var r = hugin(ev, targets), sign = sub.length % 2 ? -1 : 1;
      total += sign * r.total;
      (targets || []).forEach(function (t) { var m = r.marg[t], o = marg[t]; for (var i = 0; i < m.length; i++) o[i] += sign * m[i]; });
    });
    return { total: total, marg: marg };
  }
  var seCache = new Map();
  function noiseSE(ts) {
    var key = JSON.stringify(ts.map(function (t) { return [t.ci, t.vals]; }));
    if (seCache.has(key)) return seCache.get(key);
    var vars = []; ts.forEach(function (t) { t.enc.forEach(function (j) { vars.push(j); }); });
    var eu = null, inv = 0;
    M.meas.forEach(function (m) {
      var cl = m.clique;
      for (var i = 0; i < vars.length; i++) if (cl.indexOf(vars[i]) < 0) return;
      if (!eu) eu = evidenceOf(ts);
      var sizes = cl.map(function (v) { return M.sizes[v]; }), n = sizes.reduce(function (a, b) { return a * b; }, 1);
      var st = [], s = 1; for (var a = cl.length - 1; a >= 0; a--) { st[a] = s; s *= sizes[a]; }
      var w = new Float64Array(n).fill(1);
      eu.ev.forEach(function (e) {
        var pos = cl.indexOf(e[0]);
        for (var c = 0; c < n; c++) w[c] *= e[1][((c / st[pos]) | 0) % sizes[pos]];
      });
      eu.unions.forEach(function (members) {
        var none = new Float64Array(n).fill(1);
        members.forEach(function (j) {
          var pos = cl.indexOf(j), ab = absentWeights(j);
          for (var c = 0; c < n; c++) none[c] *= ab[((c / st[pos]) | 0) % sizes[pos]];
        });
        for (var c = 0; c < n; c++) w[c] *= 1 - none[c];
      });
      var sig = m.sigma, v = 0;
      for (var c2 = 0; c2 < n; c2++) { var sg = sig.length === 1 ? sig[0] : sig[c2]; v += w[c2] * w[c2] * sg * sg; }
      if (v > 0) inv += 1 / v;
    });
    var out = inv > 0 ? 1 / Math.sqrt(inv) : null;
    seCache.set(key, out);
    return out;
  }
  function modelEstimate(ts, p) {
    var value = M.total * Math.max(p, 0), se = noiseSE(ts);
    if (se !== null)
      return { value: value, low: Math.max(value - Z * se, 0), high: value + Z * se, source: 'model', suppressed: false,
               note: 'expected count of the published graphical model; a published measurement covers this selection' };
    var floor = 0;
    ts.forEach(function (t) { var s = noiseSE([t]); floor = Math.max(floor, s || 0); });
    var C = H.rule.model_extrapolation, half = Z * Math.sqrt(floor * floor + C * C * Math.max(value, 0));
    return { value: value, low: Math.max(value - half, 0), high: value + half, source: 'model', suppressed: false,
             note: "expected count of the published graphical model, extrapolated from smaller measured combinations (interval includes an allowance for the model's assumptions)" };
  }

  // -- the synthetic records -----------------------------------------------------------
  function termMask(t, out) {
    // out[i] = 1 where row i satisfies t
    var i, n = N;
    if (t.isSet) {
      out.fill(0);
      t.enc.forEach(function (j) { var col = CODES[j]; for (i = 0; i < n; i++) if (col[i] === 0) out[i] = 1; });
    } else {
      var lut = new Uint8Array(H.domains[t.enc[0]].size), col2 = CODES[t.enc[0]];
      t.codes.forEach(function (c) { lut[c] = 1; });
      for (i = 0; i < n; i++) out[i] = lut[col2[i]];
    }
    return out;
  }
  function rowMask(ts) {
    var mask = new Uint8Array(N).fill(1), tmp = new Uint8Array(N);
    ts.forEach(function (t) { termMask(t, tmp); for (var i = 0; i < N; i++) mask[i] &= tmp[i]; });
    return mask;
  }
  var maskCache = new Map();
  function cachedRowMask(ts) {
    var key = JSON.stringify(ts.map(function (t) { return [t.ci, t.vals]; }));
    var hit = maskCache.get(key);
    if (hit) return hit;
    var mask = rowMask(ts);
    if (maskCache.size >= 16) maskCache.clear();
    maskCache.set(key, mask);
    return mask;
  }
  // synthetic rows matching ts: in all, and split by the labels of column ci (one pass)
  function synHistogram(ts, ci) {
    var mask = cachedRowMask(ts), total = 0, i;
    for (i = 0; i < N; i++) total += mask[i];
    if (ci === null) return { total: total, byLabel: [] };
    var col = H.columns[ci], byLabel = new Array(col.labels.length).fill(0);
    if (col.kind === 'set') {
      col.enc.forEach(function (j, m) { var codes = CODES[j], c = 0; for (var r = 0; r < N; r++) if (mask[r] && codes[r] === 0) c++; byLabel[m] = c; });
    } else {
      var codes = CODES[col.enc[0]], hist = new Float64Array(H.domains[col.enc[0]].size);
      for (i = 0; i < N; i++) hist[codes[i]] += mask[i];
      for (i = 0; i < byLabel.length; i++) byLabel[i] = hist[i];
    }
    return { total: total, byLabel: byLabel };
  }
  function synEstimate(raw) {
    var value = raw * H.synthetic.scale, half = Z * H.synthetic.dispersion * Math.sqrt(value + 1);
    return { value: value, low: Math.max(value - half, 0), high: value + half, source: 'synthetic', suppressed: false,
             note: 'count over the synthetic records (a synthetic estimate)' };
  }

  // -- count(where, by): ptsynth.query.count ------------------------------------------
  function cellValues(ci, where) {
    var col = H.columns[ci];
    if (where[ci] && where[ci].length) return where[ci].slice();
    return col.labels.map(function (_, i) { return i; });
  }
  function rowOf(est, cell) {
    if (est.suppressed || est.value < K)
      return { cell: cell, estimate: null, low: null, high: null, source: est.source, suppressed: true,
               note: 'fewer than ' + K + ' (' + (est.suppressed ? est.note : 'the ' + est.source + ' estimate is below k = ' + K) + ')' };
    return { cell: cell, estimate: r1(est.value), low: r1(est.low), high: r1(est.high), source: est.source, suppressed: false, note: est.note };
  }
  function r1(x) { return Math.round(x * 10) / 10; }
  /* where: {ci: [label idx]}, by: [ci, ...] (0, 1 or 2 columns). Rows in the order of
     itertools.product over the by columns' values (first by column outermost). */
  function count(where, by) {
    by = by || [];
    var base = terms(where, by);
    var axes = by.map(function (ci) { return cellValues(ci, where); });
    var cells = [[]];
    axes.forEach(function (vals) { var next = []; cells.forEach(function (c) { vals.forEach(function (v) { next.push(c.concat([v])); }); }); cells = next; });
    // batch: group by the cell's values on all but the last by column; the last is a target
    var lastCi = by.length ? by[by.length - 1] : null;
    var groups = new Map();
    cells.forEach(function (cell, idx) {
      var key = cell.slice(0, -1).join(',');
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(idx);
    });
    var rows = new Array(cells.length);
    groups.forEach(function (idxs) {
      var head = cells[idxs[0]].slice(0, -1);
      var fixed = base.slice();
      for (var b = 0; b < head.length; b++) fixed.push(term(by[b], [head[b]]));
      var batch = null, synCache = null;
      idxs.forEach(function (idx) {
        var cell = cells[idx], ts = fixed.slice();
        if (lastCi !== null) ts.push(term(lastCi, [cell[cell.length - 1]]));
        ts = sortTerms(ts);
        var est = aggAnswer(ts);
        if (!est && M) {
          if (!batch) batch = modelMassAll(sortTerms(fixed));
          var p;
          if (lastCi === null) p = batch.total;
          else {
            var col = H.columns[lastCi], x = cell[cell.length - 1];
            var j = col.kind === 'set' ? col.enc[x] : col.enc[0], orig = col.kind === 'set' ? 0 : x;
            p = M.expand[j][orig] * batch.marg[j][M.forward[j][orig]];
          }
          est = modelEstimate(ts, p);
        }
        if (!est) {
          if (!synCache) synCache = synHistogram(sortTerms(fixed), lastCi);
          est = synEstimate(lastCi === null ? synCache.total : synCache.byLabel[cell[cell.length - 1]]);
        }
        rows[idx] = rowOf(est, cell);
      });
    });
    return rows;
  }
  // bars of column ci under the filters on the other columns (SDS Navigate)
  function bars(ci) {
    var where = {};
    Object.keys(state.where).forEach(function (k) { if (Number(k) !== ci) where[k] = state.where[k]; });
    return count(where, [ci]);
  }

  // ---------------------------------------------------------------------------------------
  // rendering helpers
  // ---------------------------------------------------------------------------------------
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; }); }
  function fmt(x) { return x === null || x === undefined ? '' : Math.round(x).toLocaleString('en-US'); }
  function fmtSig(x) { return Number(x.toPrecision(3)).toString(); }
  var LETTER = { dp_aggregate: 'A', model: 'M', synthetic: 'S' };
  var SOURCE_WORDS = { dp_aggregate: 'released DP aggregate', model: 'model estimate', synthetic: 'synthetic estimate' };
  function valueText(r) { return r.suppressed ? 'fewer than ' + K : fmt(r.estimate); }
  function rangeText(r) { return r.suppressed ? '' : fmt(r.low) + '–' + fmt(r.high); }
  var OKABE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
  var VIRIDIS = ['#fde725', '#a0da39', '#4ac16d', '#1fa187', '#277f8e', '#365c8d', '#46327e', '#440154'];
  function seqColour(v, max) {
    if (!(max > 0)) return VIRIDIS[0];
    var i = Math.min(VIRIDIS.length - 1, Math.floor(Math.sqrt(v / max) * VIRIDIS.length));
    return VIRIDIS[i];
  }
  function label(ci, li) { return H.columns[ci].labels[li]; }
  function colName(ci) { return H.columns[ci].name; }
  function colIndex(name) { for (var i = 0; i < H.columns.length; i++) if (H.columns[i].name === name) return i; return -1; }
  function tableHtml(headers, rows) {
    return '<table class="data"><thead><tr>' + headers.map(function (h) { return '<th scope="col">' + esc(h) + '</th>'; }).join('') + '</tr></thead><tbody>' +
      rows.map(function (r) { return '<tr>' + r.map(function (c, i) { return '<td' + (typeof c === 'number' || (i > 0 && /^[\d,.–<]/.test(String(c))) ? ' class="num"' : '') + '>' + esc(c) + '</td>'; }).join('') + '</tr>'; }).join('') + '</tbody></table>';
  }
  function answerRow(name, r) { return [name, valueText(r), r.suppressed ? '' : fmt(r.low), r.suppressed ? '' : fmt(r.high), SOURCE_WORDS[r.source], r.note]; }
  var ANSWER_HEAD = ['value', 'estimate', '95% low', '95% high', 'source', 'note'];
  var CURRENT = [];  // every chart's rows on screen, for the CSV download
  function card(id, title, desc, body, table) {
    var showTable = !!state.tables[id];
    return '<section class="card" data-card="' + esc(id) + '"><div class="tools"><button type="button" data-action="table" data-card="' + esc(id) + '" aria-pressed="' + showTable + '">' + (showTable ? 'Chart' : 'Table') + '</button></div>' +
      '<h3>' + esc(title) + '</h3>' + (desc ? '<p class="desc">' + esc(desc) + '</p>' : '') +
      (showTable ? table : body) + '</section>';
  }
  function legend() {
    return '<div class="legend" aria-label="Sources">' + ['dp_aggregate', 'model', 'synthetic'].filter(function (s) {
      return s !== 'dp_aggregate' || AGG; }).filter(function (s) { return s !== 'model' || M; }).map(function (s) {
      return '<span><span class="sw ' + s + '" aria-hidden="true">' + LETTER[s] + '</span>' + SOURCE_WORDS[s] + '</span>';
    }).join('') + '<span>— line: 95% interval</span><span>“fewer than ' + K + '”: too few to show (suppressed)</span></div>';
  }

  // -- horizontal bar chart (explorer) -------------------------------------------------
  // Bars keep the order of the first drawing (counts descending, ordinal columns in their
  // order), so filtering never makes them jump, and a redraw only updates attributes.
  var ORDER = {};
  function barGeometry(ci) {
    var col = H.columns[ci];
    var lw = Math.min(190, 16 + 7.2 * Math.max.apply(null, col.labels.map(function (l) { return Math.min(26, String(l).length); })));
    return { W: 460, lw: lw, bw: 460 - lw - 110, RH: 20 };
  }
  function barScale(rows) {
    var maxv = 1; rows.forEach(function (r) { if (!r.suppressed) maxv = Math.max(maxv, r.high || 0, r.estimate || 0); });
    return maxv;
  }
  function barAria(ci, li, r, selected) {
    return H.columns[ci].name + ' ' + label(ci, li) + ': ' + valueText(r) + (r.suppressed ? '' : ', 95% interval ' + rangeText(r)) + ', ' + SOURCE_WORDS[r.source] + (selected ? ', selected' : '');
  }
  function barChart(ci, rows) {
    var col = H.columns[ci], sel = state.where[ci] || [], g = barGeometry(ci);
    if (!ORDER[ci]) {
      var o = rows.map(function (_, i) { return i; });
      if (col.kind !== 'ordinal') o.sort(function (a, b) { return (rows[b].estimate || 0) - (rows[a].estimate || 0) || a - b; });
      ORDER[ci] = o;
    }
    var order = ORDER[ci], maxv = barScale(rows), W = g.W, lw = g.lw, bw = g.bw, RH = g.RH;
    var h = order.length * RH + 6, out = ['<svg class="chart" data-chart="' + esc(col.name) + '" data-col="' + ci + '" viewBox="0 0 ' + W + ' ' + h + '" width="' + W + '" height="' + h + '" role="group" aria-label="' + esc(col.name) + ': counts per value; press Enter on a bar to filter">'];
    order.forEach(function (li, k) {
      var r = rows[li], y = k * RH + 3, selected = sel.indexOf(li) >= 0;
      var len = r.suppressed ? 0 : Math.max(0, bw * r.estimate / maxv);
      out.push('<g class="bar mark' + (selected ? ' selected' : '') + '" tabindex="0" role="button" aria-pressed="' + selected + '" data-col="' + ci + '" data-label="' + li + '" data-value="' + (r.suppressed ? '' : r.estimate) + '" data-low="' + (r.suppressed ? '' : r.low) + '" data-high="' + (r.suppressed ? '' : r.high) + '" data-source="' + r.source + '" data-suppressed="' + r.suppressed + '" aria-label="' + esc(barAria(ci, li, r, selected)) + '">' +
        '<rect class="bg" x="0" y="' + y + '" width="' + W + '" height="' + (RH - 2) + '"></rect>' +
        '<text x="' + (lw - 6) + '" y="' + (y + 13) + '" text-anchor="end">' + esc(trunc(label(ci, li), 26)) + '</text>' +
        '<rect class="fill" x="' + lw + '" y="' + (y + 3) + '" width="' + len.toFixed(1) + '" height="' + (RH - 8) + '"></rect>' +
        '<line class="whisker" x1="' + (r.suppressed ? 0 : (lw + bw * r.low / maxv).toFixed(1)) + '" x2="' + (r.suppressed ? 0 : (lw + Math.min(bw * r.high / maxv, bw + 4)).toFixed(1)) + '" y1="' + (y + 9) + '" y2="' + (y + 9) + '"' + (r.suppressed ? ' visibility="hidden"' : '') + '></line>' +
        '<text class="badge src-' + r.source + '" x="' + (lw + bw + 8) + '" y="' + (y + 13) + '">' + LETTER[r.source] + '</text>' +
        '<text class="val" x="' + (lw + bw + 20) + '" y="' + (y + 13) + '">' + esc(valueText(r)) + '</text></g>');
    });
    out.push('</svg>');
    return order.length > 24 ? '<div class="scroll" tabindex="-1">' + out.join('') + '</div>' : out.join('');
  }
  function updateBarChart(svg, ci, rows) {
    var sel = state.where[ci] || [], g = barGeometry(ci), maxv = barScale(rows), lw = g.lw, bw = g.bw;
    var bars = svg.children;
    for (var k = 0; k < bars.length; k++) {
      var el = bars[k], li = Number(el.getAttribute('data-label')), r = rows[li], selected = sel.indexOf(li) >= 0;
      el.setAttribute('class', 'bar mark' + (selected ? ' selected' : ''));
      el.setAttribute('aria-pressed', String(selected));
      el.setAttribute('data-value', r.suppressed ? '' : r.estimate);
      el.setAttribute('data-low', r.suppressed ? '' : r.low);
      el.setAttribute('data-high', r.suppressed ? '' : r.high);
      el.setAttribute('data-source', r.source);
      el.setAttribute('data-suppressed', String(r.suppressed));
      el.setAttribute('aria-label', barAria(ci, li, r, selected));
      var parts = el.children;  // bg, label, fill, whisker, badge, value
      parts[2].setAttribute('width', r.suppressed ? '0' : Math.max(0, bw * r.estimate / maxv).toFixed(1));
      if (r.suppressed) parts[3].setAttribute('visibility', 'hidden');
      else {
        parts[3].removeAttribute('visibility');
        parts[3].setAttribute('x1', (lw + bw * r.low / maxv).toFixed(1));
        parts[3].setAttribute('x2', (lw + Math.min(bw * r.high / maxv, bw + 4)).toFixed(1));
      }
      parts[4].setAttribute('class', 'badge src-' + r.source);
      parts[4].textContent = LETTER[r.source];
      parts[5].textContent = valueText(r);
    }
  }
  function trunc(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + '…' : s; }

  // ---------------------------------------------------------------------------------------
  // pages
  // ---------------------------------------------------------------------------------------
  function pages() {
    var L = H.layout, out = [['explore', 'Explore']];
    if (L.time !== null && colIndex(L.time) >= 0) out.push(['trend', 'Over time']);
    if (L.geography.length && H.geo && Object.keys(H.geo).length) out.push(['map', 'Map']);
    if (L.age && L.sex) out.push(['demographics', 'Age and sex']);
    if (L.sex && L.exploitation.length) out.push(['split', 'Sex and exploitation']);
    out.push(['crosstab', 'Cross-tab']);
    L.pages.forEach(function (p, i) { out.push(['page' + i, p.title]); });
    out.push(['about', 'About this release']);
    return out;
  }
  function renderTabs() {
    var nav = document.getElementById('tabs');
    nav.innerHTML = pages().map(function (p) {
      var sel = p[0] === state.tab;
      return '<button type="button" role="tab" id="tab-' + p[0] + '" data-tab="' + p[0] + '" aria-selected="' + sel + '" tabindex="' + (sel ? 0 : -1) + '">' + esc(p[1]) + '</button>';
    }).join('');
  }
  function renderFilters() {
    var el = document.getElementById('filters'), parts = [];
    var keys = Object.keys(state.where).map(Number).sort(function (a, b) { return a - b; });
    keys.forEach(function (ci) {
      (state.where[ci] || []).forEach(function (li) {
        parts.push('<span class="chip" data-col="' + ci + '" data-label="' + li + '">' + esc(colName(ci)) + ' = ' + esc(label(ci, li)) +
          '<button type="button" data-action="unselect" data-col="' + ci + '" data-label="' + li + '" aria-label="Remove filter ' + esc(colName(ci) + ' = ' + label(ci, li)) + '">×</button></span>');
      });
    });
    el.innerHTML = parts.length ? '<span class="note">Filters (AND across columns, OR within one):</span>' + parts.join('') + '<button type="button" class="clear" data-action="clear">Clear all</button>'
      : '<span class="note">No filter: click a bar (or focus it and press Enter) to filter every other chart.</span>';
  }
  function downloads() {
    return '<div class="controls"><button type="button" class="tool" data-action="dl-rows">Download the filtered synthetic rows (CSV)</button>' +
      '<button type="button" class="tool" data-action="dl-numbers">Download the numbers on this page (CSV)</button>' +
      (AGG ? '<button type="button" class="tool" data-action="dl-aggregates">Download the released DP aggregates (CSV)</button>' : '') + '</div>';
  }
  function explorer(cols) {
    var html = [legend(), downloads(), '<div class="grid">'];
    cols.forEach(function (ci) {
      var rows = bars(ci), col = H.columns[ci];
      CURRENT.push({ chart: col.name, rows: rows, names: rows.map(function (r) { return label(ci, r.cell[0]); }) });
      html.push(card('bars-' + ci, col.name, (col.description || '') + (col.kind === 'set' ? ' (several values per person possible)' : ''),
        barChart(ci, rows), tableHtml(ANSWER_HEAD, rows.map(function (r) { return answerRow(label(ci, r.cell[0]), r); }))));
    });
    html.push('</div>');
    return html.join('');
  }
  // a filter change on a page of bar charts: update every chart in place (no new nodes)
  function updateExplorer(main) {
    var cards = main.querySelectorAll('section.card[data-card^="bars-"]');
    for (var i = 0; i < cards.length; i++) {
      var ci = Number(cards[i].getAttribute('data-card').slice(5)), rows = bars(ci);
      CURRENT.push({ chart: colName(ci), rows: rows, names: rows.map(function (r) { return label(ci, r.cell[0]); }) });
      var svg = cards[i].querySelector('svg[data-chart]');
      if (svg) updateBarChart(svg, ci, rows);
      else {
        var table = cards[i].querySelector('table.data');
        if (table) table.outerHTML = tableHtml(ANSWER_HEAD, rows.map(function (r) { return answerRow(label(ci, r.cell[0]), r); }));
      }
    }
  }
  function trend() {
    var ci = colIndex(H.layout.time), rows = count(state.where, [ci]), col = H.columns[ci];
    CURRENT.push({ chart: 'trend ' + col.name, rows: rows, names: rows.map(function (r) { return label(ci, r.cell[0]); }) });
    var W = 900, Hh = 320, L = 70, R = 20, T = 20, B = 60, n = rows.length;
    var maxv = 1; rows.forEach(function (r) { if (!r.suppressed) maxv = Math.max(maxv, r.high); });
    function x(i) { return L + (n > 1 ? i * (W - L - R) / (n - 1) : (W - L - R) / 2); }
    function y(v) { return T + (Hh - T - B) * (1 - v / maxv); }
    var pts = [];
    // One line and band per run of shown periods: a suppressed period ("fewer than k") breaks
    // them, so no estimate or interval is drawn across it.
    var runs = [[]];
    rows.forEach(function (r, i) { if (r.suppressed) { if (runs[runs.length - 1].length) runs.push([]); } else runs[runs.length - 1].push(i); });
    function xy(p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }
    var svg = ['<svg class="chart trend" data-chart="trend" viewBox="0 0 ' + W + ' ' + Hh + '" width="' + W + '" height="' + Hh + '" role="img" aria-label="Count per ' + esc(col.name) + ' with 95% intervals">'];
    for (var g = 0; g <= 4; g++) { var v = maxv * g / 4; svg.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#e2e8f0"></line><text class="val" x="' + (L - 6) + '" y="' + (y(v) + 4) + '" text-anchor="end">' + fmt(v) + '</text>'); }
    runs.forEach(function (run) {
      if (!run.length) return;
      var high = run.map(function (i) { return [x(i), y(rows[i].high)]; });
      var low = run.map(function (i) { return [x(i), y(rows[i].low)]; }).reverse();
      svg.push('<polygon points="' + high.concat(low).map(xy).join(' ') + '" fill="#56B4E9" fill-opacity="0.3"></polygon>');
      if (run.length > 1) svg.push('<polyline points="' + run.map(function (i) { return xy([x(i), y(rows[i].estimate)]); }).join(' ') + '" fill="none" stroke="#0072B2" stroke-width="2"></polyline>');
    });
    var every = Math.max(1, Math.ceil(n / 16));
    rows.forEach(function (r, i) {
      var lab = label(ci, r.cell[0]), aria = lab + ': ' + valueText(r) + (r.suppressed ? '' : ', 95% interval ' + rangeText(r)) + ', ' + SOURCE_WORDS[r.source];
      pts.push('<circle class="mark point src-' + r.source + '" tabindex="0" data-period="' + esc(lab) + '" data-value="' + (r.suppressed ? '' : r.estimate) + '" data-suppressed="' + r.suppressed + '" data-source="' + r.source + '" cx="' + x(i).toFixed(1) + '" cy="' + (r.suppressed ? y(0) : y(r.estimate)).toFixed(1) + '" r="5"' + (r.suppressed ? ' fill="#fff" stroke="#4a5568"' : '') + ' aria-label="' + esc(aria) + '"><title>' + esc(aria) + '</title></circle>');
      if (i % every === 0) svg.push('<text class="val" x="' + x(i).toFixed(1) + '" y="' + (Hh - B + 18) + '" text-anchor="middle">' + esc(lab) + '</text>');
    });
    svg.push(pts.join(''), '</svg>');
    return legend() + card('trend', 'Count per ' + col.name, 'Line: estimate; band: 95% interval; hollow circles: fewer than ' + K + '. Filters apply.', svg.join(''),
      tableHtml(ANSWER_HEAD, rows.map(function (r) { return answerRow(label(ci, r.cell[0]), r); })));
  }
  function geoKey(codes, labelStr) {
    if (codes === 'iso3166_alpha3') return labelStr;
    if (codes === 'iso3166_alpha2') {
      var shapes = H.geo.world.shapes;
      for (var k in shapes) if (shapes[k].a2 === labelStr) return k;
      return null;
    }
    return labelStr;
  }
  function map() {
    var geos = H.layout.geography, g = geos[Math.min(state.geo, geos.length - 1)], ci = colIndex(g.column);
    var atlas = g.codes === 'us_state' ? H.geo.us : H.geo.world;
    var rows = count(state.where, [ci]);
    CURRENT.push({ chart: 'map ' + g.column, rows: rows, names: rows.map(function (r) { return label(ci, r.cell[0]); }) });
    var maxv = 1; rows.forEach(function (r) { if (!r.suppressed) maxv = Math.max(maxv, r.estimate); });
    var byKey = {}, missing = [];
    rows.forEach(function (r) { var lab = label(ci, r.cell[0]), key = geoKey(g.codes, lab); if (key && atlas.shapes[key]) byKey[key] = r; else missing.push(lab); });
    var svg = ['<svg class="chart map" data-chart="map" data-geo="' + esc(g.column) + '" viewBox="0 0 ' + atlas.width + ' ' + atlas.height + '" width="' + atlas.width + '" height="' + atlas.height + '" role="group" aria-label="Map of counts per ' + esc(g.column) + '">',
      '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#edf2f7"></rect><line x1="0" y1="0" x2="0" y2="6" stroke="#718096" stroke-width="2"></line></pattern></defs>'];
    var dots = [];
    Object.keys(atlas.shapes).forEach(function (key) {
      var s = atlas.shapes[key], r = byKey[key];
      if (!r) { svg.push('<path class="country base" d="' + s.d + '"><title>' + esc(s.name) + ': not a value of ' + esc(g.column) + '</title></path>'); return; }
      var aria = s.name + ' (' + key + '): ' + valueText(r) + (r.suppressed ? '' : ', 95% interval ' + rangeText(r)) + ', ' + SOURCE_WORDS[r.source];
      var attrs = ' tabindex="0" data-code="' + esc(key) + '" data-value="' + (r.suppressed ? '' : r.estimate) + '" data-suppressed="' + r.suppressed + '" data-source="' + r.source + '" aria-label="' + esc(aria) + '"';
      var fill = r.suppressed ? 'url(#hatch)' : seqColour(r.estimate, maxv);
      svg.push('<path class="country mark' + (r.suppressed ? ' suppressed' : '') + '" d="' + s.d + '" fill="' + fill + '"' + attrs + '><title>' + esc(aria) + '</title></path>');
      if (s.small && s.c) dots.push('<circle class="dot" cx="' + s.c[0] + '" cy="' + s.c[1] + '" r="4" fill="' + fill + '" stroke="#1a202c" stroke-width=".6" aria-hidden="true"></circle>');
    });
    svg.push(dots.join(''), '</svg>');
    var scale = '<div class="legend">' + VIRIDIS.map(function (c, i) {
      var lo = maxv * Math.pow(i / VIRIDIS.length, 2), hi = maxv * Math.pow((i + 1) / VIRIDIS.length, 2);
      return '<span><span class="sw" style="background:' + c + '"></span>' + fmt(lo) + '–' + fmt(hi) + '</span>'; }).join('') +
      '<span><span class="sw" style="background:#a0aec0"></span>hatched: fewer than ' + K + '</span></div>';
    var chooser = geos.length > 1 ? '<div class="controls"><label>Map of <select data-action="geo">' + geos.map(function (gg, i) { return '<option value="' + i + '"' + (i === state.geo ? ' selected' : '') + '>' + esc(gg.column) + '</option>'; }).join('') + '</select></label></div>' : '';
    var note = missing.length ? '<p class="note">Not on the map (no shape at this scale or not a country code): ' + esc(missing.join(', ')) + ' — see the table.</p>' : '';
    return legend() + chooser + card('map', 'Count per ' + g.column, 'Colour: estimate. ' + atlas.projection + ' projection; ' + atlas.source + '. Filters apply.', scale + svg.join('') + note,
      tableHtml(ANSWER_HEAD, rows.map(function (r) { return answerRow(label(ci, r.cell[0]), r); })));
  }
  function grouped(id, title, desc, rowCi, seriesDefs, where) {
    // seriesDefs: [{name, where: {ci: [li]}}]; rows = values of rowCi; one count per (row value, series)
    var rowVals = cellValues(rowCi, where), data = [];
    seriesDefs.forEach(function (s) {
      var w = Object.assign({}, where); Object.keys(s.where).forEach(function (k) { w[k] = s.where[k]; });
      data.push(count(w, [rowCi]));
    });
    var maxv = 1; data.forEach(function (rs) { rs.forEach(function (r) { if (!r.suppressed) maxv = Math.max(maxv, r.high); }); });
    var lw = 175, W = 900, bw = W - lw - 110, bh = 14, gh = seriesDefs.length * bh + 10, Hh = rowVals.length * gh + 10;
    var svg = ['<svg class="chart" data-chart="' + esc(id) + '" viewBox="0 0 ' + W + ' ' + Hh + '" width="' + W + '" height="' + Hh + '" role="group" aria-label="' + esc(title) + '">'];
    var table = [];
    rowVals.forEach(function (li, k) {
      var y0 = k * gh + 6;
      svg.push('<text x="' + (lw - 8) + '" y="' + (y0 + gh / 2) + '" text-anchor="end">' + esc(trunc(label(rowCi, li), 22)) + '</text>');
      data.forEach(function (rs, si) {
        var r = rs[k], y = y0 + si * bh, len = r.suppressed ? 0 : bw * r.estimate / maxv, s = seriesDefs[si];
        var aria = label(rowCi, li) + ', ' + s.name + ': ' + valueText(r) + (r.suppressed ? '' : ', 95% interval ' + rangeText(r)) + ', ' + SOURCE_WORDS[r.source];
        svg.push('<g class="mark" tabindex="0" data-row="' + esc(label(rowCi, li)) + '" data-series="' + esc(s.name) + '" data-value="' + (r.suppressed ? '' : r.estimate) + '" data-suppressed="' + r.suppressed + '" data-source="' + r.source + '" aria-label="' + esc(aria) + '"><title>' + esc(aria) + '</title>' +
          '<rect x="' + lw + '" y="' + y + '" width="' + len.toFixed(1) + '" height="' + (bh - 2) + '" fill="' + OKABE[si % OKABE.length] + '"></rect>' +
          (r.suppressed ? '' : '<line class="whisker" x1="' + (lw + bw * r.low / maxv).toFixed(1) + '" x2="' + (lw + bw * r.high / maxv).toFixed(1) + '" y1="' + (y + bh / 2 - 1) + '" y2="' + (y + bh / 2 - 1) + '"></line>') +
          '<text class="badge src-' + r.source + '" x="' + (lw + bw + 6) + '" y="' + (y + bh - 3) + '">' + LETTER[r.source] + '</text>' +
          '<text class="val" x="' + (lw + bw + 18) + '" y="' + (y + bh - 3) + '">' + esc(valueText(r)) + '</text></g>');
        table.push([label(rowCi, li) + ' · ' + s.name].concat(answerRow('', r).slice(1)));
      });
    });
    svg.push('</svg>');
    var keyHtml = '<div class="legend">' + seriesDefs.map(function (s, si) { return '<span><span class="sw" style="background:' + OKABE[si % OKABE.length] + '"></span>' + esc(s.name) + '</span>'; }).join('') + '</div>';
    data.forEach(function (rs, si) { CURRENT.push({ chart: title + ' · ' + seriesDefs[si].name, rows: rs, names: rs.map(function (r) { return label(rowCi, r.cell[0]); }) }); });
    return card(id, title, desc, keyHtml + svg.join(''), tableHtml(ANSWER_HEAD, table));
  }
  function demographics() {
    var a = colIndex(H.layout.age), s = colIndex(H.layout.sex);
    var series = cellValues(s, state.where).map(function (li) { var w = {}; w[s] = [li]; return { name: label(s, li), where: w }; });
    var where = Object.assign({}, state.where); delete where[s];
    return legend() + grouped('demographics', H.layout.age + ' by ' + H.layout.sex, 'One bar per ' + H.layout.sex + ' in each ' + H.layout.age + ' group. Filters apply.', a, series, where);
  }
  function exploitationSeries() {
    var out = [];
    H.layout.exploitation.forEach(function (name) {
      var ci = colIndex(name); if (ci < 0) return;
      var col = H.columns[ci];
      col.labels.forEach(function (lab, li) {
        var w = {}; w[ci] = [li];
        var flag = col.labels.length === 1 && /^(1|yes|true)$/i.test(lab);
        out.push({ name: flag ? name : name + ' = ' + lab, where: w });
      });
    });
    return out;
  }
  function split() {
    var s = colIndex(H.layout.sex), series = exploitationSeries(), where = Object.assign({}, state.where);
    series.forEach(function (x) { Object.keys(x.where).forEach(function (k) { delete where[k]; }); });
    return legend() + grouped('split', H.layout.sex + ' by type of exploitation', 'Each bar counts the people of that ' + H.layout.sex + ' with that type (a person may have several). Filters apply.', s, series, where);
  }
  function crosstab() {
    var opts = H.columns.map(function (c, i) { return i; });
    if (state.xa === null) state.xa = colIndex(H.layout.sex) >= 0 ? colIndex(H.layout.sex) : 0;
    if (state.xb === null) state.xb = colIndex(H.layout.age) >= 0 && colIndex(H.layout.age) !== state.xa ? colIndex(H.layout.age) : (state.xa === 0 ? 1 : 0);
    var a = state.xa, b = state.xb;
    function sel(name, cur) { return '<select data-action="' + name + '" aria-label="' + (name === 'xa' ? 'Rows' : 'Columns') + '">' + opts.map(function (i) { return '<option value="' + i + '"' + (i === cur ? ' selected' : '') + '>' + esc(colName(i)) + '</option>'; }).join('') + '</select>'; }
    var controls = '<div class="controls"><label>Rows ' + sel('xa', a) + '</label><label>Columns ' + sel('xb', b) + '</label></div>';
    if (a === b) return legend() + controls + '<p class="note">Choose two different columns.</p>';
    var rows = count(state.where, [a, b]);
    CURRENT.push({ chart: 'cross-tab ' + colName(a) + ' x ' + colName(b), rows: rows, names: rows.map(function (r) { return label(a, r.cell[0]) + ' · ' + label(b, r.cell[1]); }) });
    var av = cellValues(a, state.where), bv = cellValues(b, state.where);
    var maxv = 1; rows.forEach(function (r) { if (!r.suppressed) maxv = Math.max(maxv, r.estimate); });
    var cw = Math.max(46, Math.min(90, 700 / bv.length)), ch = 26, lw = 175, th = 90, W = lw + cw * bv.length + 10, Hh = th + ch * av.length + 10;
    var svg = ['<svg class="chart heatmap" data-chart="crosstab" viewBox="0 0 ' + W + ' ' + Hh + '" width="' + W + '" height="' + Hh + '" role="group" aria-label="Cross-tab of ' + esc(colName(a)) + ' by ' + esc(colName(b)) + '">',
      '<defs><pattern id="hatch2" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#edf2f7"></rect><line x1="0" y1="0" x2="0" y2="6" stroke="#718096" stroke-width="2"></line></pattern></defs>'];
    bv.forEach(function (lj, j) { svg.push('<text class="val" transform="translate(' + (lw + j * cw + cw / 2) + ',' + (th - 6) + ') rotate(-45)">' + esc(trunc(label(b, lj), 16)) + '</text>'); });
    rows.forEach(function (r, idx) {
      var i = Math.floor(idx / bv.length), j = idx % bv.length, x = lw + j * cw, y = th + i * ch;
      if (j === 0) svg.push('<text x="' + (lw - 6) + '" y="' + (y + 17) + '" text-anchor="end">' + esc(trunc(label(a, r.cell[0]), 22)) + '</text>');
      var fill = r.suppressed ? 'url(#hatch2)' : seqColour(r.estimate, maxv), dark = !r.suppressed && VIRIDIS.indexOf(fill) >= 4;
      var aria = label(a, r.cell[0]) + ' and ' + label(b, r.cell[1]) + ': ' + valueText(r) + (r.suppressed ? '' : ', 95% interval ' + rangeText(r)) + ', ' + SOURCE_WORDS[r.source];
      svg.push('<g class="mark" tabindex="0" data-row="' + esc(label(a, r.cell[0])) + '" data-colv="' + esc(label(b, r.cell[1])) + '" data-value="' + (r.suppressed ? '' : r.estimate) + '" data-suppressed="' + r.suppressed + '" data-source="' + r.source + '" aria-label="' + esc(aria) + '"><title>' + esc(aria) + '</title><rect x="' + x + '" y="' + y + '" width="' + (cw - 2) + '" height="' + (ch - 2) + '" fill="' + fill + '"></rect>' +
        '<text class="val" x="' + (x + cw / 2) + '" y="' + (y + 17) + '" text-anchor="middle" style="fill:' + (dark ? '#fff' : '#1a202c') + '">' + (r.suppressed ? '&lt;' + K : esc(fmt(r.estimate))) + ' ' + LETTER[r.source] + '</text></g>');
    });
    svg.push('</svg>');
    return legend() + controls + card('crosstab', colName(a) + ' by ' + colName(b), 'Each cell: estimate and source letter; hatched: fewer than ' + K + '. Filters apply.', svg.join(''),
      tableHtml(['cell'].concat(ANSWER_HEAD.slice(1)), rows.map(function (r) { return [label(a, r.cell[0]) + ' · ' + label(b, r.cell[1])].concat(answerRow('', r).slice(1)); })));
  }
  function about() {
    var A = H.about, parts = ['<div class="about">'];
    if (A.seeded) parts.push('<p class="alert" data-test-bundle="1"><strong>This is a TEST bundle, NOT FOR RELEASE.</strong> Its noise was drawn from a seeded generator (' + esc(A.randomness) + '), so anyone who knows the seed can undo it. The privacy promises below do not hold for it.</p>');
    var spent = A.spent.map(function (g) { return [g.step + (g.what && g.what !== g.step ? ' — ' + g.what : ''), g.mechanism.replace(/_/g, ' '), g.count, (100 * g.share).toFixed(1) + '%']; });
    var eps = A.epsilon, delta = A.delta;
    parts.push('<h2>About this release</h2>',
      '<p>' + esc(A.description || A.dataset) + '</p>',
      '<dl>',
      '<dt>What is published</dt><dd>Estimates about people in case records, made with <em>differential privacy</em>: random noise was added to every count measured from the records, so that no published number depends much on any one person. ' +
        (A.synthesizer === 'aggregate' ? 'The release publishes noisy counts of combinations of up to ' + A.reporting_length + ' values (the “released DP aggregates”) and synthetic records drawn from them.' :
          'The release publishes a statistical model fitted to noisy counts and synthetic records drawn from it.') + '</dd>',
      '<dt>The privacy unit: one person</dt><dd>' + esc(A.privacy_unit) + '. The guarantee compares the release with and without any one person’s record (' + esc(A.neighbouring) + ').</dd>',
      '<dt>ε (epsilon) = ' + esc(fmtSig(eps)) + '</dt><dd>How much any one person can change what is published: with or without a person, every outcome is at most e<sup>ε</sup> ≈ ' + esc(fmtSig(Math.exp(eps))) + ' times as likely. Smaller is more private and noisier.</dd>',
      '<dt>δ (delta) = ' + esc(String(delta)) + '</dt><dd>A tiny probability with which the ε promise may fail. It should be far below one in the number of people.</dd>',
      '<dt>k = ' + K + '</dt><dd>Any estimate below ' + K + ' people is shown as “fewer than ' + K + '”, never as a number, and the synthetic records were changed so that every combination of up to ' + A.reporting_length + ' of the identifying columns (' + esc(A.quasi_identifiers.join(', ') || 'none declared') + ') is shared by at least ' + K + ' records or none.</dd>',
      '<dt>What was spent</dt><dd>The whole budget of this release is ε = ' + esc(fmtSig(eps)) + ', δ = ' + esc(String(delta)) + ' (ρ = ' + esc(fmtSig(A.rho)) + ' in zero-concentrated DP), spent in ' + A.n_entries + ' measurements recorded in a hash-chained ledger (budget.json):' +
        tableHtml(['step', 'mechanism', 'measurements', 'share of the budget'], spent) + '</dd>',
      '<dt>Synthetic records are not real people</dt><dd>The ' + fmt(H.synthetic.n) + ' synthetic records were generated from the noisy measurements only. A synthetic record that looks like someone you know is a coincidence; it says nothing about any real person. Use them to explore patterns, not to find individuals.</dd>',
      '<dt>Where each number comes from</dt><dd><span class="sw dp_aggregate">A</span> a released DP aggregate: a noisy count published for exactly that selection; interval from its known noise. ' +
        '<span class="sw model">M</span> the published model’s expected count: no sampling noise, but estimated from noisy counts; its interval comes from the noise of the measurements that cover the selection, and is widened when the model extrapolates from smaller combinations. ' +
        '<span class="sw synthetic">S</span> a count over the synthetic records, scaled to the estimated number of people; its interval is measured against the released counts. The page uses the first that can answer (the same rule as <code>ptsynth query</code>).</dd>',
      '<dt>What is suppressed</dt><dd>Estimates under ' + K + ', and released aggregates whose noisy count fell below the release threshold. Missing values are not shown as a category.</dd>',
      '<dt>Estimated number of people</dt><dd>' + fmt(A.dp_records) + ' (itself a differentially private estimate).</dd>',
      '<dt>Release</dt><dd>' + esc(A.release_id) + ', created ' + esc(A.created) + ', synthesizer “' + esc(A.synthesizer) + '”, ptsynth ' + esc(A.versions.ptsynth) + '.</dd>');
    if (A.warnings.length) parts.push('<dt>Warnings recorded with the release</dt><dd><ul>' + A.warnings.map(function (w) { return '<li>' + esc(w) + '</li>'; }).join('') + '</ul></dd>');
    parts.push('</dl></div>');
    return parts.join('');
  }

  // ---------------------------------------------------------------------------------------
  // render loop and events
  // ---------------------------------------------------------------------------------------
  function render(focusKey, filterOnly) {
    var t = performance.now();
    CURRENT = [];
    renderTabs(); renderFilters();
    var main = document.getElementById('main'), html;
    var tab = state.tab, L = H.layout;
    var barsPage = tab === 'explore' || tab.indexOf('page') === 0;
    if (filterOnly && barsPage && main.getAttribute('data-page') === tab) {
      try { updateExplorer(main); } catch (e) { api.error = String(e && e.stack || e); }
    } else {
      try {
        if (tab === 'explore') html = explorer(H.columns.map(function (_, i) { return i; }));
        else if (tab === 'trend') html = trend();
        else if (tab === 'map') html = map();
        else if (tab === 'demographics') html = demographics();
        else if (tab === 'split') html = split();
        else if (tab === 'crosstab') html = crosstab();
        else if (tab === 'about') html = about();
        else if (tab.indexOf('page') === 0) {
          var p = L.pages[Number(tab.slice(4))];
          html = '<h2>' + esc(p.title) + '</h2>' + explorer(p.columns.map(colIndex).filter(function (i) { return i >= 0; }));
        }
      } catch (e) { html = '<p class="alert">Could not draw this page: ' + esc(e.message) + '</p>'; api.error = String(e && e.stack || e); }
      main.innerHTML = html;
      main.setAttribute('data-page', tab);
    }
    if (focusKey) { var el = main.querySelector(focusKey); if (el && document.activeElement !== el) el.focus(); }
    api.renders += 1;
    api.lastRenderMs = performance.now() - t;
    document.body.setAttribute('data-renders', String(api.renders));
  }
  function toggle(ci, li) {
    var cur = (state.where[ci] || []).slice(), k = cur.indexOf(li);
    if (k >= 0) cur.splice(k, 1); else { cur.push(li); cur.sort(function (a, b) { return a - b; }); }
    if (cur.length) state.where[ci] = cur; else delete state.where[ci];
  }
  function onAction(target, ev) {
    var act = target.getAttribute('data-action');
    if (target.classList.contains('bar')) {
      var ci = Number(target.getAttribute('data-col')), li = Number(target.getAttribute('data-label'));
      toggle(ci, li); render('.bar[data-col="' + ci + '"][data-label="' + li + '"]', true); return;
    }
    if (target.hasAttribute('data-tab')) { state.tab = target.getAttribute('data-tab'); render(); document.getElementById('tab-' + state.tab).focus(); return; }
    if (act === 'unselect') { toggle(Number(target.getAttribute('data-col')), Number(target.getAttribute('data-label'))); render(null, true); var c = document.querySelector('#filters button'); if (c) c.focus(); return; }
    if (act === 'clear') { state.where = {}; render(null, true); return; }
    if (act === 'table') { var id = target.getAttribute('data-card'); state.tables[id] = !state.tables[id]; render('[data-action="table"][data-card="' + id + '"]'); return; }
    if (act === 'dl-rows') { download('synthetic-filtered.csv', rowsCsv()); return; }
    if (act === 'dl-numbers') { download('numbers.csv', numbersCsv()); return; }
    if (act === 'dl-aggregates') { download('aggregates.csv', aggregatesCsv()); return; }
    void ev;
  }
  document.addEventListener('click', function (ev) {
    var t = ev.target.closest('[data-action], .bar, [data-tab]');
    if (t && H) onAction(t, ev);
  });
  document.addEventListener('change', function (ev) {
    var t = ev.target, act = t.getAttribute && t.getAttribute('data-action');
    if (act === 'geo') { state.geo = Number(t.value); render(); }
    if (act === 'xa' || act === 'xb') { state[act] = Number(t.value); render('select[data-action="' + act + '"]'); }
  });
  document.addEventListener('keydown', function (ev) {
    var t = ev.target;
    if (!H || !t || !t.classList) return;
    if (t.classList.contains('bar') && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); onAction(t, ev); return; }
    if ((t.classList.contains('mark') || t.classList.contains('bar')) && /^Arrow(Up|Down|Left|Right)$/.test(ev.key)) {
      var svg = t.closest('svg'), marks = Array.prototype.slice.call(svg.querySelectorAll('[tabindex="0"]')), i = marks.indexOf(t);
      var next = marks[i + (ev.key === 'ArrowUp' || ev.key === 'ArrowLeft' ? -1 : 1)];
      if (next) { ev.preventDefault(); next.focus(); }
      return;
    }
    if (t.getAttribute('role') === 'tab' && /^Arrow(Left|Right)$/.test(ev.key)) {
      var tabs = Array.prototype.slice.call(document.querySelectorAll('[role=tab]')), j = tabs.indexOf(t);
      var nt = tabs[(j + (ev.key === 'ArrowLeft' ? -1 : 1) + tabs.length) % tabs.length];
      state.tab = nt.getAttribute('data-tab'); render(); document.getElementById('tab-' + state.tab).focus(); ev.preventDefault();
    }
  });

  // -- downloads ---------------------------------------------------------------------------
  // as ptsynth.spreadsheet.neutralise: a text cell a spreadsheet would run as a formula gets a
  // leading apostrophe
  function csvCell(s) {
    var text = typeof s === 'number' ? String(s) : String(s === null || s === undefined ? '' : s);
    if (typeof s !== 'number' && /^[=+\-@\t\r]/.test(text)) text = "'" + text;
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function csv(rows) { return rows.map(function (r) { return r.map(csvCell).join(','); }).join('\r\n') + '\r\n'; }
  function download(name, text) {
    var url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
    var a = document.createElement('a'); a.href = url; a.download = name; document.body.appendChild(a); a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
    api.lastDownload = { name: name, text: text };
  }
  function rowsCsv() {
    var mask = rowMask(terms(state.where, [])), out = [H.columns.map(function (c) { return c.name; })];
    for (var i = 0; i < N; i++) {
      if (!mask[i]) continue;
      out.push(H.columns.map(function (c) {
        if (c.kind === 'set') return c.labels.filter(function (_, m) { return CODES[c.enc[m]][i] === 0; }).join(c.delimiter || ';');
        var code = CODES[c.enc[0]][i]; return code < c.labels.length ? c.labels[code] : '';
      }));
    }
    return csv(out);
  }
  function numbersCsv() {
    var out = [['chart', 'value', 'estimate', 'low_95', 'high_95', 'source', 'suppressed', 'note']];
    var filt = Object.keys(state.where).map(function (ci) { return colName(Number(ci)) + ' in {' + state.where[ci].map(function (li) { return label(Number(ci), li); }).join('|') + '}'; }).join(' AND ');
    CURRENT.forEach(function (c) { c.rows.forEach(function (r, i) { out.push([c.chart, c.names[i], r.suppressed ? 'fewer than ' + K : r.estimate, r.low, r.high, r.source, r.suppressed, r.note]); }); });
    out.push(['filters', filt || '(none)', '', '', '', '', '', '']);
    return csv(out);
  }
  function aggregatesCsv() {
    var names = [];
    H.domains.forEach(function (d, j) {
      var col = null; H.columns.forEach(function (c) { if (c.enc.indexOf(j) >= 0) col = c; });
      if (col.kind === 'set') names.push([col.name + ':' + col.labels[col.enc.indexOf(j)]]);
      else names.push(col.labels.map(function (l) { return col.name + ':' + l; }));
    });
    var flat = []; names.forEach(function (n) { n.forEach(function (s) { flat.push(s); }); });
    var out = [['selections', 'protected_count'], ['record_count', H.aggregates.record_count]];
    Object.keys(AGG.lengths).forEach(function (l) {
      var s = AGG.lengths[l], ell = Number(l);
      for (var i = 0; i < s.counts.length; i++) {
        var sel = []; for (var j = 0; j < ell; j++) sel.push(flat[s.ids[i * ell + j]]);
        out.push([sel.join(';'), s.counts[i]]);
      }
    });
    return csv(out);
  }

  // -- start ---------------------------------------------------------------------------------
  load().then(function () {
    K = H.rule.k; Z = H.rule.z; N = H.synthetic.n;
    CODES = H.synthetic.codes.map(blob);
    initAggregates(); initModel();
    var loading = document.getElementById('loading'); if (loading) loading.remove();
    render();
    api.count = function (whereByName, byNames) {
      var w = {}; Object.keys(whereByName || {}).forEach(function (name) {
        var ci = colIndex(name); w[ci] = whereByName[name].map(function (v) { return H.columns[ci].labels.indexOf(v); }).sort(function (a, b) { return a - b; });
      });
      return count(w, (byNames || []).map(colIndex));
    };
    api.setFilters = function (whereByName) { state.where = {}; Object.keys(whereByName).forEach(function (n) { var ci = colIndex(n); state.where[ci] = whereByName[n].map(function (v) { return H.columns[ci].labels.indexOf(v); }).sort(function (a, b) { return a - b; }); }); render(null, true); };
    api.columns = H.columns.map(function (c) { return c.name; });
    api.layout = H.layout;
    api.loadMs = performance.now();
    api.scriptMs = performance.now() - T0;
    api.ready = true;
    document.documentElement.setAttribute('data-showcase-ready', '1');
  }).catch(function (e) {
    api.error = String(e && e.stack || e);
    var main = document.getElementById('main');
    main.innerHTML = '<p class="alert">This page could not read its data: ' + esc(String(e && e.message || e)) + '. It needs a current browser (Chrome, Edge, Firefox or Safari from 2023 on).</p>';
    document.documentElement.setAttribute('data-showcase-ready', 'error');
  });
})();
