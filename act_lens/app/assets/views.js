/* act_lens views: attention patterns, the sink census, the selection curve and the flips
   table, drawn with canvas and SVG from JSON embedded in the page. No network access and no
   dependencies: the page works from a file:// URL. Each view is a
   <div class="al-view" data-act-lens="KIND"> holding a <script type="application/json">. */
(function () {
  "use strict";
  if (window.ActLensViews) return;

  var VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  var DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
  var MASKED = [236, 239, 243];
  var FIRST = "#d62728", HIDDEN = "#ff7f0e";

  function ramp(stops) {
    var out = new Uint8ClampedArray(256 * 3);
    for (var i = 0; i < 256; i++) {
      var x = (i / 255) * (stops.length - 1), j = Math.min(Math.floor(x), stops.length - 2), f = x - j;
      for (var c = 0; c < 3; c++) out[3 * i + c] = Math.round(stops[j][c] * (1 - f) + stops[j + 1][c] * f);
    }
    return out;
  }
  var SEQ = ramp(VIRIDIS), DIV = ramp(DIVERGING);

  function h(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function tokenText(t) {
    if (t === "") return "\u2205";
    return t.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
  }
  function fmt(x, d) {
    return x === null || x === undefined || isNaN(x) ? "\u2013" : Number(x).toFixed(d === undefined ? 3 : d);
  }
  function signed(x, d) { return x === null || x === undefined || isNaN(x) ? "\u2013" : (x >= 0 ? "+" : "\u2212") + Math.abs(x).toFixed(d === undefined ? 3 : d); }
  function css(lut, v) {
    var i = 3 * Math.max(0, Math.min(255, Math.round(v * 255)));
    return "rgb(" + lut[i] + "," + lut[i + 1] + "," + lut[i + 2] + ")";
  }

  var tip = null;
  function showTip(ev, text) {
    if (!tip) { tip = h("div", { cls: "al-tip" }); document.body.appendChild(tip); }
    tip.textContent = text;
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = Math.max(0, ev.clientX - tip.offsetWidth - 10);
    if (y + tip.offsetHeight > window.innerHeight) y = Math.max(0, ev.clientY - tip.offsetHeight - 10);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function hideTip() { if (tip) tip.style.display = "none"; }

  function canvas(w, ht) { // CSS size w x ht, sharp on high-DPI screens
    var c = document.createElement("canvas"), r = window.devicePixelRatio || 1;
    c.width = Math.round(w * r);
    c.height = Math.round(ht * r);
    c.style.width = w + "px";
    c.style.height = ht + "px";
    var ctx = c.getContext("2d");
    ctx.scale(r, r);
    return { el: c, ctx: ctx };
  }

  function decodeU16(b64) { // little-endian uint16, 65535 = weight 1
    var s = atob(b64), n = s.length >> 1, out = new Float32Array(n);
    for (var i = 0; i < n; i++) out[i] = (s.charCodeAt(2 * i) | (s.charCodeAt(2 * i + 1) << 8)) / 65535;
    return out;
  }

  /* ---------- attention patterns ---------- */

  // Each head's causal pattern is stored as its lower triangle, row by row.
  function Patterns(d) {
    this.n = d.tokens.length;
    this.tri = (this.n * (this.n + 1)) / 2;
    this.before = decodeU16(d.before);
    this.after = d.after ? decodeU16(d.after) : null;
    if (this.before.length !== d.heads.length * this.tri)
      throw new Error("attention data holds " + this.before.length + " weights, expected " + d.heads.length * this.tri);
  }
  Patterns.prototype.at = function (arr, hi, q, k) {
    return k > q ? NaN : arr[hi * this.tri + (q * (q + 1)) / 2 + k];
  };
  Patterns.prototype.value = function (mode, hi, q, k) {
    if (mode === "after") return this.at(this.after, hi, q, k);
    if (mode === "change") return this.at(this.after, hi, q, k) - this.at(this.before, hi, q, k);
    return this.at(this.before, hi, q, k);
  };
  Patterns.prototype.scale = function (mode, hi) { // the colour scale's top for one head
    var m = 0, base = hi * this.tri;
    for (var i = 0; i < this.tri; i++) {
      var b = this.before[base + i], a = this.after ? this.after[base + i] : 0;
      var v = mode === "change" ? Math.abs(a - b) : Math.max(a, b);
      if (v > m) m = v;
    }
    return m > 0 ? m : 1;
  };
  // Square-root colour scale: sinks take most of the mass, and on a linear scale every other
  // weight would get the same colour.
  function level(mode, v, scale) {
    if (isNaN(v)) return null;
    if (mode === "change") { var s = v / scale; return 0.5 + 0.5 * Math.sign(s) * Math.sqrt(Math.abs(s)); }
    return Math.sqrt(Math.max(0, v) / scale);
  }
  function mapImage(P, mode, hi) {
    var n = P.n, off = document.createElement("canvas");
    off.width = n;
    off.height = n;
    var octx = off.getContext("2d"), img = octx.createImageData(n, n), px = img.data;
    var lut = mode === "change" ? DIV : SEQ, scale = P.scale(mode, hi);
    for (var q = 0; q < n; q++) {
      for (var k = 0; k < n; k++) {
        var p = 4 * (q * n + k), v = level(mode, P.value(mode, hi, q, k), scale);
        if (v === null) { px[p] = MASKED[0]; px[p + 1] = MASKED[1]; px[p + 2] = MASKED[2]; }
        else { var i = 3 * Math.max(0, Math.min(255, Math.round(v * 255))); px[p] = lut[i]; px[p + 1] = lut[i + 1]; px[p + 2] = lut[i + 2]; }
        px[p + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    return off;
  }
  function drawMarkers(ctx, sinks, x0, y, cell, size) {
    sinks.forEach(function (k) {
      var x = x0 + (k + 0.5) * cell;
      ctx.fillStyle = k === 0 ? FIRST : HIDDEN;
      ctx.beginPath();
      ctx.moveTo(x - size, y - size * 1.6);
      ctx.lineTo(x + size, y - size * 1.6);
      ctx.lineTo(x, y);
      ctx.closePath();
      ctx.fill();
    });
  }

  function attentionView(root, d) {
    var P = new Patterns(d), n = P.n, H = d.heads.length, hasAfter = !!P.after;
    var state = { mode: "before", head: d.focus || 0 };
    var sinkAny = {};
    d.sinks.forEach(function (cols) { cols.forEach(function (k) { sinkAny[k] = true; }); });

    root.appendChild(h("h4", { text: d.title || "Attention of " + d.model }));
    root.appendChild(h("div", {
      cls: "al-note",
      text: (d.intervention ? "Intervention: " + d.intervention + ". " : "") +
        "Markers: sink columns (red: first token, orange: hidden sinks; mean attention received > " +
        d.threshold + ", rule " + d.rule + ", on the plain pattern). Colour: square root of the weight, per head; " +
        "grey: future keys. Click a head to enlarge it, hover for weights."
    }));
    var strip = h("div", { cls: "al-tokens" });
    d.tokens.forEach(function (t, i) {
      strip.appendChild(h("span", { cls: "al-tok" + (sinkAny[i] ? (i === 0 ? " al-first" : " al-hidden") : ""), title: "position " + i, text: tokenText(t) }));
    });
    root.appendChild(strip);

    var buttons = h("div", { cls: "al-buttons" }), modes = hasAfter ? ["before", "after", "change"] : ["before"];
    var labels = { before: hasAfter ? "before" : "pattern", after: "after", change: "after \u2212 before" };
    if (hasAfter) {
      modes.forEach(function (m) {
        var b = h("button", { type: "button", text: labels[m] });
        b.addEventListener("click", function () { state.mode = m; drawGrid(); });
        buttons.appendChild(b);
      });
      root.appendChild(buttons);
    }
    var grid = h("div", { cls: "al-grid" }), detail = h("div");
    root.appendChild(grid);
    root.appendChild(detail);

    var thumb = H > 40 ? 56 : 84, thumbs = [];
    var byLayer = [];
    d.heads.forEach(function (lh, hi) {
      if (!byLayer.length || byLayer[byLayer.length - 1].layer !== lh[0]) byLayer.push({ layer: lh[0], idx: [] });
      byLayer[byLayer.length - 1].idx.push(hi);
    });
    // A few heads per layer (a selected head set): one wrapping row labelled L/H; else a row per layer.
    var sparse = byLayer.length > 1 && H / byLayer.length < 4, flow = sparse ? h("div", { cls: "al-row" }) : null;
    if (sparse) grid.appendChild(flow);
    byLayer.forEach(function (row) {
      var r = flow || h("div", { cls: "al-row" }, [h("div", { cls: "al-rowlabel", text: "layer " + row.layer })]);
      row.idx.forEach(function (hi) {
        var lh = d.heads[hi], c = canvas(thumb, thumb + 7);
        var box = h("div", { cls: "al-thumb", title: "L" + lh[0] + " H" + lh[1] }, [c.el, h("span", { text: (sparse ? "L" + lh[0] + " " : "") + "H" + lh[1] })]);
        box.addEventListener("click", function () { state.head = hi; drawGrid(); drawDetail(); });
        thumbs.push({ c: c, box: box, hi: hi });
        r.appendChild(box);
      });
      if (!flow) grid.appendChild(r);
    });

    function drawGrid() {
      Array.prototype.forEach.call(buttons.children, function (b, i) { b.className = modes[i] === state.mode ? "al-on" : ""; });
      thumbs.forEach(function (t) {
        var ctx = t.c.ctx;
        ctx.clearRect(0, 0, thumb, thumb + 7);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(mapImage(P, state.mode, t.hi), 0, 7, thumb, thumb);
        drawMarkers(ctx, d.sinks[t.hi], 0, 6, thumb / n, 2.5);
        t.box.className = "al-thumb" + (t.hi === state.head ? " al-sel" : "");
      });
    }

    function bigMap(mode, hi, title) {
      var cell = Math.max(3, Math.min(24, Math.floor(480 / n))), labelled = cell >= 8;
      var font = (labelled ? Math.min(11, cell) : 9) + "px ui-monospace, Menlo, Consolas, monospace";
      var probe = document.createElement("canvas").getContext("2d"), widest = 0;
      probe.font = font;
      d.tokens.forEach(function (t) { widest = Math.max(widest, probe.measureText(tokenText(t)).width); });
      var step = labelled ? 1 : Math.ceil(11 / cell);
      var margin = Math.min(120, Math.ceil(widest) + 8), top = 14;
      var side = n * cell, c = canvas(margin + side + 8, top + side + margin), ctx = c.ctx;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(mapImage(P, mode, hi), margin, top, side, side);
      drawMarkers(ctx, d.sinks[hi], margin, top - 2, cell, 4);
      ctx.font = font;
      ctx.fillStyle = "#1d2430";
      ctx.textBaseline = "middle";
      for (var i = 0; i < n; i += step) {
        var label = tokenText(d.tokens[i]);
        ctx.textAlign = "right";
        ctx.fillText(label, margin - 4, top + (i + 0.5) * cell, margin - 6);
        ctx.save();
        ctx.translate(margin + (i + 0.5) * cell, top + side + 4);
        ctx.rotate(-Math.PI / 2);
        ctx.fillText(label, 0, 0, margin - 6);
        ctx.restore();
      }
      c.el.addEventListener("mousemove", function (ev) {
        var rect = c.el.getBoundingClientRect();
        var k = Math.floor((ev.clientX - rect.left - margin) / cell), q = Math.floor((ev.clientY - rect.top - top) / cell);
        if (k < 0 || q < 0 || k >= n || q >= n || k > q) { hideTip(); return; }
        var lh = d.heads[hi], lines = ["L" + lh[0] + " H" + lh[1] + "   query " + q + " " + JSON.stringify(d.tokens[q]) + " \u2192 key " + k + " " + JSON.stringify(d.tokens[k])];
        var b = P.at(P.before, hi, q, k);
        if (hasAfter) {
          var a = P.at(P.after, hi, q, k);
          lines.push("before " + fmt(b) + "   after " + fmt(a) + "   change " + signed(a - b));
        } else lines.push("weight " + fmt(b));
        showTip(ev, lines.join("\n"));
      });
      c.el.addEventListener("mouseleave", hideTip);
      return h("div", { cls: "al-panel" }, [h("h5", { text: title }), c.el]);
    }

    function drawDetail() {
      var hi = state.head, lh = d.heads[hi];
      detail.textContent = "";
      detail.appendChild(h("h4", { text: "Layer " + lh[0] + ", head " + lh[1] + " (rows: queries, columns: keys)" }));
      var panels = h("div", { cls: "al-detail" });
      panels.appendChild(bigMap("before", hi, hasAfter ? "before" : "pattern"));
      if (hasAfter) panels.appendChild(bigMap("after", hi, "after"));
      detail.appendChild(panels);
      var cols = d.sinks[hi];
      if (!cols.length) { detail.appendChild(h("div", { cls: "al-note", text: "No sink in this head on this prompt." })); return; }
      var head = ["position", "token", "sink", "mean attention received" + (hasAfter ? " before" : "")];
      if (hasAfter) head.push("after", "change");
      var table = h("table", { cls: "al-table" }, [h("tr", {}, head.map(function (t) { return h("th", { text: t }); }))]);
      cols.forEach(function (k, j) {
        var b = d.mass_before[hi][j], cells = [h("td", { cls: "al-num", text: String(k) }), h("td", { cls: "al-text", text: tokenText(d.tokens[k]) }),
          h("td", { text: k === 0 ? "first token" : "hidden" }), h("td", { cls: "al-num", text: fmt(b) })];
        if (hasAfter) {
          var a = d.mass_after[hi][j];
          cells.push(h("td", { cls: "al-num", text: fmt(a) }), h("td", { cls: "al-num", text: signed(a - b) }));
        }
        table.appendChild(h("tr", {}, cells));
      });
      detail.appendChild(table);
    }
    drawGrid();
    drawDetail();
  }

  /* ---------- sink census ---------- */

  function heatmap(title, values, vmax, layers, tipFor) {
    var L = values.length, Hn = values[0].length;
    var cw = Math.max(10, Math.min(28, Math.floor(360 / Hn))), ch = Math.max(7, Math.min(20, Math.floor(480 / L)));
    var left = 46, top = 18, w = left + Hn * cw + 8, ht = top + L * ch + 40;
    var c = canvas(w, ht), ctx = c.ctx;
    for (var i = 0; i < L; i++) {
      for (var j = 0; j < Hn; j++) {
        ctx.fillStyle = css(SEQ, Math.max(0, Math.min(1, values[i][j] / vmax)));
        ctx.fillRect(left + j * cw, top + i * ch, cw, ch);
      }
    }
    ctx.fillStyle = "#1d2430";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    var ystep = Math.ceil(12 / ch);
    for (i = 0; i < L; i += ystep) ctx.fillText(String(layers[i]), left - 4, top + (i + 0.5) * ch);
    ctx.textAlign = "center";
    var xstep = Math.ceil(16 / cw);
    for (j = 0; j < Hn; j += xstep) ctx.fillText(String(j), left + (j + 0.5) * cw, top - 8);
    var by = top + L * ch + 12, bw = Hn * cw;
    for (var x = 0; x < bw; x++) { ctx.fillStyle = css(SEQ, x / Math.max(1, bw - 1)); ctx.fillRect(left + x, by, 1, 8); }
    ctx.fillStyle = "#1d2430";
    ctx.textAlign = "left";
    ctx.fillText("0", left, by + 18);
    ctx.textAlign = "right";
    ctx.fillText(fmt(vmax, 2), left + bw, by + 18);
    ctx.fillText("L\\H", left - 4, top - 8);
    c.el.addEventListener("mousemove", function (ev) {
      var r = c.el.getBoundingClientRect(), j = Math.floor((ev.clientX - r.left - left) / cw), i = Math.floor((ev.clientY - r.top - top) / ch);
      if (i < 0 || j < 0 || i >= L || j >= Hn) { hideTip(); return; }
      showTip(ev, tipFor(i, j));
    });
    c.el.addEventListener("mouseleave", hideTip);
    return h("div", { cls: "al-map" }, [h("h5", { text: title }), c.el]);
  }

  function censusView(root, d) {
    root.appendChild(h("h4", { text: "Sink census of " + d.model + " (" + d.n_prompts + " prompts)" }));
    root.appendChild(h("div", { cls: "al-note", text: "Hidden sink: a key other than the first token whose mean received attention exceeds " + d.threshold + " (rule " + d.rule + "). Hover a head for its numbers and its most frequent sink tokens." }));
    function tipFor(i, j) {
      var lines = ["L" + d.layers[i] + " H" + j,
        "hidden sink in " + fmt(100 * d.freq[i][j], 0) + "% of prompts",
        "hidden-sink mass " + fmt(d.hidden_mass[i][j]) + "   first-token mass " + fmt(d.first_mass[i][j])];
      var toks = d.head_tokens ? d.head_tokens[i][j] : null;
      if (toks && toks.length) lines.push("top sink tokens: " + toks.map(function (tc) { return JSON.stringify(tc[0]) + " (" + tc[1] + ")"; }).join(", "));
      var cls = d.head_classes ? d.head_classes[i][j] : null;
      if (cls && cls.length) lines.push("token classes: " + cls.map(function (tc) { return tc[0] + " " + tc[1]; }).join(", "));
      return lines.join("\n");
    }
    var vmax = 0;
    d.hidden_mass.forEach(function (row) { row.forEach(function (v) { vmax = Math.max(vmax, v); }); });
    root.appendChild(h("div", { cls: "al-maps" }, [
      heatmap("hidden-sink frequency", d.freq, 1, d.layers, tipFor),
      heatmap("hidden-sink mass", d.hidden_mass, vmax || 1, d.layers, tipFor)]));
    if (d.top_tokens && d.top_tokens.length) {
      var chips = h("div", { cls: "al-chips" }, [h("b", { text: "Most frequent hidden-sink tokens: " })]);
      d.top_tokens.forEach(function (tc) { chips.appendChild(h("span", { title: tc[1] + " times", text: tokenText(tc[0]) + " " + tc[1] })); });
      root.appendChild(chips);
    }
  }

  /* ---------- selection curve ---------- */

  var SVG = "http://www.w3.org/2000/svg"; // the XML namespace name, not a resource: nothing is fetched
  function s(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function curveView(root, d) {
    var pts = d.points, W = 580, Ht = 300, l = 64, r = 16, t = 14, b = 44;
    root.appendChild(h("h4", { text: d.title || "Joint selection: validation curve" }));
    root.appendChild(h("div", { cls: "al-note", text: "Heads applied together, in order of single-head gain, on " + d.n_validation + " validation prompts; band: \u00b1 one standard error; green: the chosen size." }));
    if (!pts.length) { root.appendChild(h("div", { cls: "al-note", text: "No curve." })); return; }
    var xs = pts.map(function (p) { return p.size; }), lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) { lo = Math.min(lo, p.value - (p.stderr || 0)); hi = Math.max(hi, p.value + (p.stderr || 0)); });
    if (hi === lo) { hi += 1; lo -= 1; }
    var pad = 0.06 * (hi - lo); lo -= pad; hi += pad;
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x1 === x0) x1 = x0 + 1;
    function X(v) { return l + ((v - x0) / (x1 - x0)) * (W - l - r); }
    function Y(v) { return t + (1 - (v - lo) / (hi - lo)) * (Ht - t - b); }
    var svg = s("svg", { width: W, height: Ht, viewBox: "0 0 " + W + " " + Ht });
    svg.appendChild(s("rect", { x: l, y: t, width: W - l - r, height: Ht - t - b, fill: "#fbfcfd", stroke: "#c9d0d9" }));
    for (var i = 0; i <= 4; i++) {
      var v = lo + (i / 4) * (hi - lo), y = Y(v);
      svg.appendChild(s("line", { x1: l, x2: W - r, y1: y, y2: y, stroke: "#e6e9ee" }));
      var tx = s("text", { x: l - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#445" });
      tx.textContent = v.toFixed(3);
      svg.appendChild(tx);
    }
    var xstep = Math.max(1, Math.ceil((x1 - x0) / 10));
    for (var xv = x0; xv <= x1; xv += xstep) {
      var lab = s("text", { x: X(xv), y: Ht - b + 16, "text-anchor": "middle", "font-size": 11, fill: "#445" });
      lab.textContent = String(xv);
      svg.appendChild(lab);
    }
    var xt = s("text", { x: (l + W - r) / 2, y: Ht - 8, "text-anchor": "middle", "font-size": 12, fill: "#1d2430" });
    xt.textContent = "heads applied together";
    svg.appendChild(xt);
    var yt = s("text", { x: 14, y: (t + Ht - b) / 2, "text-anchor": "middle", "font-size": 12, fill: "#1d2430", transform: "rotate(-90 14 " + (t + Ht - b) / 2 + ")" });
    yt.textContent = "validation " + d.metric;
    svg.appendChild(yt);
    var upper = pts.map(function (p) { return X(p.size) + "," + Y(p.value + (p.stderr || 0)); });
    var lower = pts.slice().reverse().map(function (p) { return X(p.size) + "," + Y(p.value - (p.stderr || 0)); });
    svg.appendChild(s("polygon", { points: upper.concat(lower).join(" "), fill: "#2f6fde", opacity: 0.15 }));
    svg.appendChild(s("line", { x1: l, x2: W - r, y1: Y(pts[0].value), y2: Y(pts[0].value), stroke: "#888", "stroke-dasharray": "4 3" }));
    if (d.chosen !== null && d.chosen !== undefined)
      svg.appendChild(s("line", { x1: X(d.chosen), x2: X(d.chosen), y1: t, y2: Ht - b, stroke: "#1a9641", "stroke-width": 2 }));
    svg.appendChild(s("polyline", { points: pts.map(function (p) { return X(p.size) + "," + Y(p.value); }).join(" "), fill: "none", stroke: "#2f6fde", "stroke-width": 2 }));
    pts.forEach(function (p) {
      var dot = s("circle", { cx: X(p.size), cy: Y(p.value), r: 4, fill: p.size === d.chosen ? "#1a9641" : "#2f6fde" });
      dot.addEventListener("mousemove", function (ev) {
        showTip(ev, p.size + " heads" + (p.size === d.chosen ? " (chosen)" : "") + "\n" + d.metric + " " + fmt(p.value, 4) + " \u00b1 " + fmt(p.stderr || 0, 4) +
          (p.accuracy === null || p.accuracy === undefined ? "" : "\naccuracy " + fmt(100 * p.accuracy, 1) + "%"));
      });
      dot.addEventListener("mouseleave", hideTip);
      svg.appendChild(dot);
    });
    root.appendChild(h("div", { cls: "al-curve" }, [svg]));
  }

  /* ---------- flips ---------- */

  function flipsView(root, d) {
    root.appendChild(h("h4", { text: "Predictions that changed: " + d.task }));
    root.appendChild(h("div", { cls: "al-note", text: d.n + " examples; " + d.rows.length + " predictions changed: fixed " + d.fixed + ", broken " + d.broken + ", wrong either way " + (d.rows.length - d.fixed - d.broken) + ". p: probability among the choices. Click a column to sort." }));
    if (!d.rows.length) return;
    var text = h("input", { type: "search", placeholder: "filter text" }), kind = h("select", {});
    ["all", "fixed", "broken", "other"].forEach(function (k) { kind.appendChild(h("option", { value: k, text: k })); });
    root.appendChild(h("div", { cls: "al-filter" }, [text, kind]));
    var cols = [["uid", "example"], ["text", "text"], ["gold", "gold"], ["base", d.base_name || "baseline"], ["base_p", "p"], ["treated", d.treated_name || "treated"], ["treated_p", "p"], ["change", "change"]];
    var sortKey = null, asc = true, table = h("table", { cls: "al-table" }), body = h("tbody");
    var headRow = h("tr");
    cols.forEach(function (c) {
      var th = h("th", { cls: "al-sort", text: c[1] });
      th.addEventListener("click", function () { asc = sortKey === c[0] ? !asc : true; sortKey = c[0]; fill(); });
      headRow.appendChild(th);
    });
    table.appendChild(h("thead", {}, [headRow]));
    table.appendChild(body);
    root.appendChild(table);
    function fill() {
      var needle = text.value.toLowerCase(), want = kind.value;
      var rows = d.rows.filter(function (r) {
        return (want === "all" || r.change === want) &&
          (!needle || [r.uid, r.text, r.gold, r.base, r.treated].join(" ").toLowerCase().indexOf(needle) >= 0);
      });
      if (sortKey) rows.sort(function (a, b) { var x = a[sortKey], y = b[sortKey]; return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      body.textContent = "";
      rows.forEach(function (r) {
        body.appendChild(h("tr", {}, [h("td", { text: r.uid }), h("td", { cls: "al-text", title: r.full || r.text, text: r.text }),
          h("td", { text: r.gold }), h("td", { text: r.base }), h("td", { cls: "al-num", text: fmt(r.base_p, 2) }),
          h("td", { text: r.treated }), h("td", { cls: "al-num", text: fmt(r.treated_p, 2) }),
          h("td", { cls: r.change === "fixed" ? "al-fixed" : r.change === "broken" ? "al-broke" : "", text: r.change })]));
      });
    }
    text.addEventListener("input", fill);
    kind.addEventListener("change", fill);
    fill();
  }

  /* ---------- mounting ---------- */

  var KINDS = { attention: attentionView, census: censusView, curve: curveView, flips: flipsView };

  function mount(el) {
    if (el.getAttribute("data-mounted")) return;
    el.setAttribute("data-mounted", "1");
    var src = el.querySelector('script[type="application/json"]');
    try {
      var kind = el.getAttribute("data-act-lens");
      if (!KINDS[kind]) throw new Error("unknown view kind " + JSON.stringify(kind));
      KINDS[kind](el, JSON.parse(src.textContent));
    } catch (err) {
      el.appendChild(h("div", { cls: "al-error", text: "act_lens view failed: " + err.message }));
      console.error(err);
    }
  }
  function mountAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(".al-view[data-act-lens]"), mount);
    // when every view is drawn, for tests and benchmarks: milliseconds since navigation start
    document.documentElement.setAttribute("data-act-lens-ready", String(performance.now()));
  }
  window.ActLensViews = { mount: mount, mountAll: mountAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { mountAll(document); });
  else mountAll(document);
})();
