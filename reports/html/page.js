/*
 * page.js -- draws the wlprof HTML report from the report JSON embedded in
 * the page (<script id="wlprof-data">, schema wlprof.report/3, see
 * docs/report-schema.md). Plain ES2017, no libraries, no network: the file
 * opens from disk.
 *
 * Sections, top to bottom: headline (wall, the split bar, cores busy, the
 * verdict), timeline (one SVG lane per thread, grouped by process; wheel to
 * zoom, drag to pan, double-click to reset), flame graph (an SVG icicle:
 * click to zoom, search, CPU / waiting / both), then the functions table
 * (sortable), wait reasons, busiest threads and the profiler's own cost.
 *
 * For tests and tools the page states its result on <body>: data-status is
 * "ok" once everything is drawn, "error" if a script error happened (the
 * messages are in #errors); data-lanes and data-frames count what was drawn.
 */
(function () {
  'use strict';

  var errors = [];
  function recordError(msg) {
    errors.push(String(msg));
    var box = document.getElementById('errors');
    if (box) box.textContent = errors.join('\n');
    document.body.setAttribute('data-status', 'error');
  }
  window.onerror = function (msg, src, line, col) {
    recordError(msg + (line ? ' (line ' + line + ':' + col + ')' : ''));
  };

  var SVGNS = 'http://www.w3.org/2000/svg';
  var COMPUTING = { user: 1, system: 1, runqueue: 1 };
  var STATE_COLOR = {
    user: '#f76707', system: '#c92a2a', runqueue: '#fcc419',
    sleep: '#74c0fc', network: '#1c7ed6', disk: '#5f3dc4', pipe: '#15aabf',
    lock: '#9775fa', gil: '#e599f7', poll: '#96f2d7', child: '#adb5bd',
    terminal: '#63e6be', other: '#ced4da'
  };
  var STATE_WORD = {
    user: 'on CPU (user)', system: 'on CPU (system)', runqueue: 'runnable, waiting for a CPU',
    sleep: 'waiting: sleep', network: 'waiting: network', disk: 'waiting: disk', pipe: 'waiting: pipe',
    lock: 'waiting: lock', gil: 'waiting: GIL (CPU demand serialised)', poll: 'waiting: event-loop poll',
    child: 'waiting: child process', terminal: 'waiting: terminal', other: 'waiting: other'
  };

  /* ---- small helpers ---- */

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function svg(tag, attrs, children) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function setAttrs(e, attrs) {
    for (var k in attrs || {}) {
      if (attrs[k] === undefined || attrs[k] === null) continue;
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'html') e.innerHTML = attrs[k];
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
  }
  function append(e, children) {
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
  }
  function num(x) { return typeof x === 'number' && isFinite(x) ? x : 0; }
  function get(o, path) {
    return path.split('.').reduce(function (a, k) { return a && a[k] !== undefined ? a[k] : undefined; }, o);
  }
  function secs(s) {
    s = num(s);
    if (s === 0) return '0 s';
    if (s < 0.001) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    return s.toFixed(s < 10 ? 3 : 2) + ' s';
  }
  function pct(x, total) { return total > 0 ? (100 * x / total).toFixed(1) + '%' : '–'; }
  function hash(str) {
    var h = 2166136261;
    for (var i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 16777619); }
    return (h >>> 0) / 4294967296;
  }
  function stateColor(name) { return STATE_COLOR[name] || STATE_COLOR.other; }

  var tip = null;
  function showTip(ev, text) {
    tip.textContent = text;
    tip.style.display = 'block';
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 4) x = ev.clientX - w - 10;
    if (y + h > window.innerHeight - 4) y = ev.clientY - h - 10;
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  function legend(names) {
    return el('div', { 'class': 'legend' }, names.map(function (n) {
      return el('span', {}, [el('i', { style: 'background:' + stateColor(n) }), STATE_WORD[n] || n]);
    }));
  }

  /* Initial view from the address's #fragment, so a view can be linked
   * (and tested): #mode=cpu|wait|both&search=RE&focus=NAME&t0=S&t1=S. */
  var HASH = {};
  (location.hash || '').replace(/^#/, '').split('&').forEach(function (kv) {
    var i = kv.indexOf('=');
    if (i > 0) HASH[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
  });

  /* ---- names of processes and threads ---- */

  function makeNames(R) {
    var procs = {}, threads = {};
    (R.processes || []).forEach(function (p) { procs[p.pid] = p; });
    (R.threads || []).forEach(function (t) { threads[t.pid + '/' + t.tid] = t; });
    (get(R, 'stacks.threads') || []).forEach(function (t) {
      var k = t.pid + '/' + t.tid;
      if (!threads[k]) threads[k] = { pid: t.pid, tid: t.tid, comm: t.comm };
      if (t.process && procs[t.pid] && !procs[t.pid].exe) procs[t.pid].exe = t.process;
    });
    return {
      process: function (pid) {
        var p = procs[pid];
        return (p ? (p.comm || p.exe || 'process') : 'process') + ' ' + pid;
      },
      command: function (pid) { var p = procs[pid]; return p && p.cmdline ? p.cmdline : ''; },
      thread: function (pid, tid) {
        var t = threads[pid + '/' + tid];
        return (t && t.comm ? t.comm : 'thread') + ' ' + tid;
      },
      order: function () { return (R.processes || []).map(function (p) { return p.pid; }); }
    };
  }

  /* ---- headline ---- */

  function headline(R) {
    var t = R.time || {}, split = R.split || {};
    var covered = num(t.running_s) + num(t.waiting_s);
    var parts = [
      { name: 'user', s: num(split.user) * covered, word: 'user CPU' },
      { name: 'system', s: num(split.system) * covered, word: 'system CPU' },
      { name: 'runqueue', s: num(t.runqueue_s), word: 'run queue' },
      { name: 'sleep', s: num(split.waiting) * covered, word: 'waiting' }
    ];
    var total = parts.reduce(function (a, p) { return a + p.s; }, 0);
    var bar = el('div', { 'class': 'splitbar', id: 'splitbar' }, parts.map(function (p) {
      var w = total > 0 ? 100 * p.s / total : 0;
      var label = w > 24 ? p.word + ' ' + secs(p.s) + ' · ' + w.toFixed(0) + '%' : w > 11 ? secs(p.s) : w > 4 ? w.toFixed(0) + '%' : '';
      return el('div', {
        style: 'width:' + w + '%;background:' + (p.name === 'sleep' ? '#339af0' : stateColor(p.name)),
        title: p.word + ': ' + secs(p.s) + ' (' + pct(p.s, total) + ')', 'data-part': p.name, text: label
      });
    }));
    var computing = parts[0].s + parts[1].s;
    var waitingS = parts[3].s;
    var argv = get(R, 'target.argv') || [];
    var status = get(R, 'target.exit_status');
    var figures = el('div', { 'class': 'figures' }, [
      fig(secs(t.wall_s), 'wall time'),
      fig(secs(computing), 'computing (' + pct(computing, total) + ')'),
      fig(secs(waitingS), 'waiting (' + pct(waitingS, total) + ')'),
      fig(num(t.cores_busy).toFixed(2), 'cores busy on average'),
      fig(String(get(R, 'sampling.max_threads') || (R.threads || []).length), 'threads at most')
    ]);
    function fig(big, small) { return el('div', { 'class': 'figure' }, [el('b', { text: big }), el('span', { text: small })]); }
    var left = el('div', { 'class': 'card' }, [
      figures, bar,
      el('div', { 'class': 'legend' }, [
        el('span', {}, [el('i', { style: 'background:' + STATE_COLOR.user }), 'user CPU ' + secs(parts[0].s)]),
        el('span', {}, [el('i', { style: 'background:' + STATE_COLOR.system }), 'system CPU ' + secs(parts[1].s)]),
        el('span', {}, [el('i', { style: 'background:' + STATE_COLOR.runqueue }), 'runnable, no CPU free ' + secs(parts[2].s)]),
        el('span', {}, [el('i', { style: 'background:#339af0' }), 'waiting off-CPU ' + secs(waitingS)])
      ]),
      el('div', { 'class': 'muted', style: 'margin-top:6px' }, [
        'exact totals: user ' + secs(t.user_s) + ', system ' + secs(t.sys_s) + ' CPU over the whole process tree; ' +
        num(get(R, 'sampling.ticks')) + ' ticks at ' + num(get(R, 'sampling.hz')) + ' Hz; exit status ' +
        (status === undefined ? '?' : status)
      ])
    ]);
    return { left: el('div', {}, [left, hotspots(R)]), title: argv.join(' ') };
  }

  /* The ten-second answer: which functions compute and which wait most. */
  function hotspots(R) {
    var F = R.functions || [];
    function top(key, word) {
      var list = F.filter(function (f) { return key(f) > 0; }).sort(function (a, b) { return key(b) - key(a); }).slice(0, 3);
      if (!list.length) return el('div', { 'class': 'muted', text: 'nothing ' + word });
      return el('ul', {}, list.map(function (f) {
        return el('li', {}, [el('code', { text: f.name }), ' ' + secs(key(f)) + (f.file ? ' — ' + f.file.split('/').pop() + ':' + f.line : '')]);
      }));
    }
    var card = el('div', { 'class': 'card', id: 'hotspots', style: 'margin-top:16px' });
    if (!F.length) {
      append(card, [el('b', { text: 'Functions' }), el('div', { 'class': 'muted', text: 'No stacks were recorded (--no-stacks, or the target could not load the agent): the split above is still exact.' })]);
      return card;
    }
    append(card, [
      el('div', { 'class': 'hot' }, [el('b', { text: 'Computing most in' }), top(function (f) { return num(f.self.user_s) + num(f.self.sys_s); }, 'computed')]),
      el('div', { 'class': 'hot' }, [el('b', { text: 'Waiting most in' }), top(function (f) { return num(f.self.wait_s); }, 'waited')]),
      el('div', { 'class': 'muted', text: 'How to read this page: warm colours (orange, red, yellow) are computing, cool colours (blues, greens, violets) are waiting. The timeline shows each thread over time; the flame graph shows which call stacks the seconds went to.' })
    ]);
    return card;
  }

  function verdict(R) {
    var c = R.classification, r = R.recommendation;
    var box = el('div', { 'class': 'card verdict', id: 'verdict' });
    if (!c || !r) {
      append(box, [el('div', { 'class': 'kind', text: 'No verdict' }),
        el('div', { 'class': 'muted', text: 'The run was too short to classify.' })]);
      return box;
    }
    var kindWord = { io_bound: 'I/O-bound: mostly waiting', cpu_bound: 'CPU-bound: mostly computing', mixed: 'Mixed: waiting and computing' };
    var execWord = { coroutine: 'a coroutine loop', thread_pool: 'a thread pool', process_pool: 'a process pool', split: 'a split' };
    var rec = 'Run it on ' + (execWord[r.executor] || r.executor) + ' of ' + r.workers +
      (r.executor === 'coroutine' ? ' tasks' : r.executor === 'thread_pool' ? ' threads' : ' processes') +
      (r.executor === 'split' && r.wait_side ? ' for the computing, the waits on ' + (execWord[r.wait_side.executor] || r.wait_side.executor) + ' of ' + r.wait_side.workers : '') +
      ': predicted ' + num(r.speedup).toFixed(2) + '× faster';
    append(box, [
      el('div', { 'class': 'kind', text: kindWord[c.kind] || c.kind }),
      el('div', { 'class': 'muted', text: 'confidence ' + num(c.confidence).toFixed(2) }),
      el('div', { 'class': 'rec', id: 'recommendation', 'data-executor': r.executor, text: rec }),
      el('ul', {}, (c.reasons || []).slice(0, 4).map(function (s) { return el('li', { text: s }); })),
      (c.reasons || []).length > 4 ? el('details', {}, [el('summary', { text: 'all ' + c.reasons.length + ' reasons' }),
        el('ul', {}, c.reasons.slice(4).map(function (s) { return el('li', { text: s }); }))]) : null
    ]);
    var pred = r.predicted || {};
    var rows = Object.keys(pred).map(function (k) {
      return el('tr', { style: k === r.executor ? 'font-weight:600' : '' }, [
        el('td', { text: k.replace('_', ' ') }), el('td', { text: String(pred[k].workers) }),
        el('td', { text: num(pred[k].speedup).toFixed(2) + '×' })]);
    });
    append(box, [el('table', {}, [el('tr', {}, [el('th', { text: 'predicted speed-up' }), el('th', { text: 'workers' }), el('th', { text: 'speed-up' })])].concat(rows))]);
    return box;
  }

  /* ---- timeline ---- */

  function timeline(R, names) {
    var T = R.timeline;
    var wrap = el('section', {}, [el('h2', { html: 'Timeline <small>one lane per thread; warm = computing, cool = waiting. Wheel or buttons to zoom, drag to pan, double-click to reset; hover for the syscall and wait channel</small>' })]);
    if (!T || !T.tick_us || !T.tick_us.length) {
      append(wrap, [el('p', { 'class': 'muted', text: 'This report has no timeline (written by an older wlprof).' })]);
      return { node: wrap, lanes: 0 };
    }
    var ticks = T.tick_us.map(function (u) { return u / 1e6; });
    var end = Math.max(ticks[ticks.length - 1], num(get(R, 'time.wall_s')));
    var states = T.states || [];
    var details = T.details || [];
    var order = names.order();
    /* The stack agent's events, to name the function a tick was in. */
    var S = R.stacks || {};
    var evOffset = num(S.t0_mono_s) && num(get(R, 'time.mono_start_s')) ? num(S.t0_mono_s) - num(get(R, 'time.mono_start_s')) : 0;
    var evByThread = {};
    (S.events || []).forEach(function (e) { evByThread[e.pid + '/' + e.tid] = e; });
    /* An on-CPU sample stands for the CPU time since the thread's previous
     * event, so a computing moment belongs to the first CPU sample ending
     * after it; a waiting moment to the blocking call spanning it. */
    function stackAt(l, t, computing) {
      var e = evByThread[l.pid + '/' + l.tid];
      if (!e || !e.t_us.length || !S.all) return null;
      var us = (t - evOffset) * 1e6, slack = 1.5e6 / Math.max(1, num(S.hz) || 100);
      var lo = 0, hi = e.t_us.length; /* first event ending at or after us */
      while (lo < hi) { var m = (lo + hi) >> 1; if (e.t_us[m] + e.dur_us[m] < us) lo = m + 1; else hi = m; }
      var k = -1;
      for (var i = lo; i < e.t_us.length && i < lo + 64; i++) {
        var st0 = S.all[e.stack[i]];
        if (!st0) break;
        if (computing ? !st0.call : (st0.call && e.t_us[i] <= us + slack)) { k = i; break; }
        if (e.t_us[i] > us + slack) break;
      }
      if (k < 0) return null;
      var st = S.all[e.stack[k]];
      var fr = (st.frames || []).slice(-3).map(function (i) { return (S.frames[i] || {}).func || '?'; });
      return fr.join(' › ') + (st.call ? ' › [' + st.call + ']' : '');
    }
    var lanes = T.threads.map(function (th) {
      var starts = [], st = [], det = [], at = th.first_tick;
      for (var i = 0; i + 2 < th.runs.length + 0; i += 3) {
        starts.push(at); st.push(th.runs[i]); det.push(th.runs[i + 2]);
        at += th.runs[i + 1];
      }
      starts.push(at);
      return { pid: th.pid, tid: th.tid, starts: starts, st: st, det: det };
    });
    lanes.sort(function (a, b) {
      var pa = order.indexOf(a.pid), pb = order.indexOf(b.pid);
      return pa !== pb ? pa - pb : (a.tid === a.pid ? -1 : b.tid === b.pid ? 1 : a.tid - b.tid);
    });
    var used = {};
    lanes.forEach(function (l) { l.st.forEach(function (s) { used[states[s]] = 1; }); });

    var LABEL = 190, LANE = 16, GAP = 3, HEAD = 18, AXIS = 22;
    var view = { t0: 0, t1: end };
    if (HASH.t0 !== undefined || HASH.t1 !== undefined) {
      var h0 = parseFloat(HASH.t0), h1 = parseFloat(HASH.t1);
      view.t0 = isFinite(h0) ? Math.max(0, Math.min(h0, end)) : 0;
      view.t1 = isFinite(h1) ? Math.max(view.t0 + 1e-4, Math.min(h1, end)) : end;
    }
    var width = 1000;
    var rows = [], y = AXIS, pid = null;
    lanes.forEach(function (l) {
      if (l.pid !== pid) {
        pid = l.pid;
        rows.push({ kind: 'proc', pid: pid, y: y });
        y += HEAD;
      }
      rows.push({ kind: 'lane', lane: l, y: y });
      l.y = y;
      y += LANE + GAP;
    });
    var height = y + 4;

    var zoomIn = el('button', { text: 'zoom in', onclick: function () { zoom(0.5, 0.5); } });
    var zoomOut = el('button', { text: 'zoom out', onclick: function () { zoom(2, 0.5); } });
    var reset = el('button', { text: 'reset', onclick: function () { view.t0 = 0; view.t1 = end; draw(); } });
    var range = el('span', { 'class': 'muted' });
    var chart = el('div', { 'class': 'chart timeline' });
    append(wrap, [el('div', { 'class': 'toolbar' }, [zoomIn, zoomOut, reset, range]), chart,
      legend(Object.keys(STATE_COLOR).filter(function (n) { return used[n]; }))]);
    var root = svg('svg', { id: 'timeline-svg', height: height });
    chart.appendChild(root);

    function plotW() { return Math.max(200, width - LABEL - 8); }
    function X(t) { return LABEL + (t - view.t0) / (view.t1 - view.t0) * plotW(); }
    function T_(x) { return view.t0 + (x - LABEL) / plotW() * (view.t1 - view.t0); }
    function tickStart(i) { return i <= 0 ? 0 : ticks[i - 1]; }
    function tickEnd(i) { return i < ticks.length ? ticks[i] : end; }
    function zoom(f, at) {
      var span = view.t1 - view.t0, c = view.t0 + span * at;
      var ns = Math.min(end, Math.max(span * f, Math.max(end / 1e5, 1e-4)));
      view.t0 = Math.max(0, c - ns * at);
      view.t1 = Math.min(end, view.t0 + ns);
      view.t0 = Math.max(0, view.t1 - ns);
      draw();
    }

    function drawLane(g, l) {
      var x0clip = LABEL, x1clip = LABEL + plotW();
      var cur = null, seq = [];
      function flush() {
        if (!cur) return;
        var name = states[cur.s] || 'other';
        g.appendChild(svg('rect', {
          x: cur.x0.toFixed(2), y: l.y, width: Math.max(0.6, cur.x1 - cur.x0).toFixed(2), height: LANE,
          fill: stateColor(name), 'class': 'st-' + name
        }));
        if (!seq.length || seq[seq.length - 1] !== name) seq.push(name);
        cur = null;
      }
      for (var i = 0; i < l.st.length; i++) {
        var a = X(tickStart(l.starts[i])), b = X(tickEnd(l.starts[i + 1] - 1));
        if (b < x0clip || a > x1clip) continue;
        a = Math.max(a, x0clip); b = Math.min(b, x1clip);
        if (cur && a - cur.x1 < 0.05 && (cur.x1 - cur.x0 < 1 || b - a < 1) && (cur.s === l.st[i] || cur.x1 - cur.x0 < 1 && b - a < 1)) {
          if (b - a > cur.best) { cur.s = l.st[i]; cur.best = b - a; }
          cur.x1 = b;
          continue;
        }
        flush();
        cur = { x0: a, x1: b, s: l.st[i], best: b - a };
      }
      flush();
      g.setAttribute('data-sequence', seq.join(' '));
    }

    function draw() {
      width = chart.clientWidth || 1000;
      root.setAttribute('width', width);
      root.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
      while (root.firstChild) root.removeChild(root.firstChild);
      var axis = svg('g', { 'class': 'axis' });
      var span = view.t1 - view.t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
      if (span / step > 16) step *= 5; else if (span / step > 8) step *= 2;
      for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1 + 1e-12; t += step) {
        var x = X(t);
        axis.appendChild(svg('line', { x1: x, x2: x, y1: AXIS - 4, y2: height }));
        axis.appendChild(svg('text', { x: x + 2, y: AXIS - 8, text: secs(t) }));
      }
      root.appendChild(axis);
      rows.forEach(function (r) {
        if (r.kind === 'proc') {
          var cmd = names.command(r.pid);
          root.appendChild(svg('text', { 'class': 'proc-label', x: 4, y: r.y + 12, text: names.process(r.pid) + (cmd ? '  —  ' + cmd.slice(0, 120) : '') }));
          return;
        }
        var l = r.lane;
        var g = svg('g', { 'class': 'lane', 'data-pid': l.pid, 'data-tid': l.tid, 'data-name': names.thread(l.pid, l.tid) });
        g.appendChild(svg('text', { 'class': 'lane-label', x: 12, y: l.y + LANE - 3, text: names.thread(l.pid, l.tid) }));
        g.appendChild(svg('rect', { x: LABEL, y: l.y, width: plotW(), height: LANE, fill: '#f8f9fa' }));
        drawLane(g, l);
        root.appendChild(g);
      });
      range.textContent = 'showing ' + secs(view.t0) + ' – ' + secs(view.t1) + ' of ' + secs(end);
      root.setAttribute('data-view', view.t0.toFixed(6) + ' ' + view.t1.toFixed(6));
    }

    function laneAt(yy) {
      for (var i = 0; i < lanes.length; i++) if (yy >= lanes[i].y && yy < lanes[i].y + LANE + GAP) return lanes[i];
      return null;
    }
    function tickAt(t) { /* first tick whose interval ends at or after t */
      var lo = 0, hi = ticks.length - 1;
      while (lo < hi) { var m = (lo + hi) >> 1; if (ticks[m] < t) lo = m + 1; else hi = m; }
      return lo;
    }
    function runAt(l, tick) {
      var lo = 0, hi = l.st.length - 1;
      if (hi < 0 || tick < l.starts[0] || tick >= l.starts[l.st.length]) return -1;
      while (lo < hi) { var m = (lo + hi + 1) >> 1; if (l.starts[m] <= tick) lo = m; else hi = m - 1; }
      return lo;
    }
    /* What the tooltip says about lane l at time t, or null. */
    function tipFor(l, t) {
      var k = tickAt(t), r = runAt(l, k);
      if (r < 0) return null;
      var name = states[l.st[r]] || 'other', d = details[l.det[r]];
      var runT0 = tickStart(l.starts[r]), runT1 = tickEnd(l.starts[r + 1] - 1);
      var fs = stackAt(l, t, COMPUTING[name] === 1);
      return names.thread(l.pid, l.tid) + ' in ' + names.process(l.pid) + '\n' +
        't = ' + secs(t) + '   ' + (STATE_WORD[name] || name) + '\n' +
        (d ? 'syscall ' + (d.syscall || '?') + '   wait channel ' + (d.wchan || '?') + '\n' : '') +
        (fs ? 'in ' + fs + '\n' : '') +
        'this stretch: ' + secs(runT0) + ' – ' + secs(runT1) + ' (' + secs(runT1 - runT0) + ')';
    }
    if (HASH.probe) { /* #probe=TID@SECONDS: the tooltip's text, for tests */
      var pr = HASH.probe.split('@'), pl = lanes.filter(function (x) { return String(x.tid) === pr[0]; })[0];
      root.setAttribute('data-probe', (pl && tipFor(pl, parseFloat(pr[1]))) || '');
    }
    var drag = null;
    root.addEventListener('mousemove', function (ev) {
      var box = root.getBoundingClientRect(), x = ev.clientX - box.left, yy = ev.clientY - box.top;
      if (drag) {
        var dt = (drag.x - x) / plotW() * (view.t1 - view.t0);
        var w = view.t1 - view.t0;
        view.t0 = Math.min(Math.max(0, drag.t0 + dt), end - w);
        view.t1 = view.t0 + w;
        draw();
        return;
      }
      var l = laneAt(yy);
      var text = l && x >= LABEL ? tipFor(l, T_(x)) : null;
      if (text) showTip(ev, text); else hideTip();
    });
    root.addEventListener('mouseleave', function () { hideTip(); drag = null; root.classList.remove('dragging'); });
    root.addEventListener('mousedown', function (ev) {
      var box = root.getBoundingClientRect();
      drag = { x: ev.clientX - box.left, t0: view.t0 };
      root.classList.add('dragging');
    });
    window.addEventListener('mouseup', function () { drag = null; root.classList.remove('dragging'); });
    root.addEventListener('dblclick', function () { view.t0 = 0; view.t1 = end; draw(); });
    root.addEventListener('wheel', function (ev) {
      var box = root.getBoundingClientRect(), x = ev.clientX - box.left;
      if (x < LABEL) return;
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, Math.min(1, Math.max(0, (x - LABEL) / plotW())));
    }, { passive: false });
    window.addEventListener('resize', function () { draw(); });
    return { node: wrap, draw: draw, lanes: lanes.length };
  }

  /* ---- flame graph (icicle) ---- */

  function buildTree(R, names) {
    var S = R.stacks;
    var root = { name: 'all', kids: {}, cpu: 0, wait: 0, selfCpu: 0, selfWait: 0, depth: 0, kind: 'root' };
    if (!S) return root;
    var frames = S.frames;
    var list = S.all || S.top || [];
    list.forEach(function (st) {
      var cpu = num(st.user_s) + num(st.sys_s), wait = num(st.wait_s);
      if (cpu + wait <= 0) return;
      var path = [{ name: names.process(st.pid), kind: 'process', module: names.command(st.pid) }];
      (st.frames || []).forEach(function (f) {
        var fr = typeof f === 'number' ? (frames[f] || {}) : f;
        path.push({ name: fr.func || '?', module: fr.module, file: fr.file, line: fr.line, kind: 'frame' });
      });
      if (st.call) path.push({ name: '[' + st.call + ']', kind: 'call', module: 'blocking call' });
      var node = root;
      root.cpu += cpu; root.wait += wait;
      path.forEach(function (p, i) {
        var key = p.name + '\u0000' + (p.module || '');
        var kid = node.kids[key];
        if (!kid) {
          kid = node.kids[key] = { name: p.name, module: p.module, file: p.file, line: p.line, kind: p.kind,
            kids: {}, cpu: 0, wait: 0, selfCpu: 0, selfWait: 0, parent: node, depth: node.depth + 1 };
        }
        kid.cpu += cpu; kid.wait += wait;
        if (i === path.length - 1) { kid.selfCpu += cpu; kid.selfWait += wait; }
        node = kid;
      });
    });
    return root;
  }

  function flame(R, names) {
    var wrap = el('section', {}, [el('h2', { html: 'Flame graph <small>stacks, root at the top; width = seconds. Orange = computing, blue = waiting. Click a frame to zoom, click the top bar to zoom out</small>' })]);
    var tree = buildTree(R, names);
    if (tree.cpu + tree.wait <= 0) {
      append(wrap, [el('p', { 'class': 'muted', text: 'No stacks were recorded (--no-stacks, or the target could not load the stack agent).' })]);
      return { node: wrap, draw: function () {}, frames: 0 };
    }
    var mode = HASH.mode === 'cpu' || HASH.mode === 'wait' ? HASH.mode : 'both', focus = tree, term = HASH.search || '';
    if (HASH.focus) { /* the heaviest frame of that name */
      var best = null;
      (function walk(n) {
        if (n.name === HASH.focus && (!best || n.cpu + n.wait > best.cpu + best.wait)) best = n;
        for (var k in n.kids) walk(n.kids[k]);
      })(tree);
      if (best) focus = best;
    }
    function value(n) { return mode === 'cpu' ? n.cpu : mode === 'wait' ? n.wait : n.cpu + n.wait; }
    var buttons = {};
    function modeButton(m, label) {
      buttons[m] = el('button', { text: label, 'class': m === mode ? 'on' : '', onclick: function () {
        mode = m;
        for (var k in buttons) buttons[k].className = k === mode ? 'on' : '';
        if (value(focus) <= 0) focus = tree;
        draw();
      } });
      return buttons[m];
    }
    var search = el('input', { type: 'search', placeholder: 'search functions (regex)', id: 'flame-search', value: term });
    var found = el('span', { 'class': 'muted' });
    search.addEventListener('input', function () { term = search.value; draw(); });
    var chart = el('div', { 'class': 'chart flame' });
    append(wrap, [el('div', { 'class': 'toolbar' }, [modeButton('both', 'computing + waiting'), modeButton('cpu', 'computing only'),
      modeButton('wait', 'waiting only'), el('button', { text: 'reset zoom', onclick: function () { focus = tree; draw(); } }), search, found]), chart]);
    var root = svg('svg', { id: 'flame-svg' });
    chart.appendChild(root);
    var ROW = 18, drawn = 0;

    function color(n) {
      if (n.kind === 'root' || n.kind === 'process') return '#dee2e6';
      var h = hash(n.name);
      if (n.wait > n.cpu) return 'hsl(' + (200 + 30 * h).toFixed(0) + ',65%,' + (62 + 14 * h).toFixed(0) + '%)';
      return 'hsl(' + (12 + 32 * h).toFixed(0) + ',85%,' + (55 + 12 * h).toFixed(0) + '%)';
    }
    function mixColor(n, computing) {
      var h = hash(n.name);
      return computing ? 'hsl(' + (22 + 20 * h).toFixed(0) + ',80%,66%)' : 'hsl(' + (205 + 20 * h).toFixed(0) + ',60%,72%)';
    }
    function tipText(n) {
      var all = value(tree);
      var where = n.file ? n.file + (n.line ? ':' + n.line : '') : (n.module || '');
      return n.name + (where ? '\n' + where : '') + '\n' +
        'computing ' + secs(n.cpu) + ', waiting ' + secs(n.wait) + '  (' + pct(value(n), all) + ' of ' +
        (mode === 'cpu' ? 'computing' : mode === 'wait' ? 'waiting' : 'all time') + ')' +
        (n.selfCpu + n.selfWait > 0 ? '\nself: computing ' + secs(n.selfCpu) + ', waiting ' + secs(n.selfWait) : '') +
        '\nclick to zoom';
    }
    function draw() {
      var width = chart.clientWidth || 1000;
      var re = null;
      try { re = term ? new RegExp(term, 'i') : null; } catch (e) { re = null; }
      while (root.firstChild) root.removeChild(root.firstChild);
      drawn = 0;
      var maxDepth = 0, matched = 0, groups = [];
      var chain = [];
      for (var a = focus; a; a = a.parent) chain.unshift(a);
      chain.forEach(function (n, i) { groups.push({ n: n, x: 0, w: width, d: i }); });
      var fv = value(focus);
      function layout(n, x, w, d) {
        var kids = Object.keys(n.kids).map(function (k) { return n.kids[k]; })
          .filter(function (k) { return value(k) > 0; })
          .sort(function (p, q) { /* computing first, waiting after: under a mixed parent's two-part bar */
            var sp = p.wait / (p.cpu + p.wait || 1), sq = q.wait / (q.cpu + q.wait || 1);
            if ((sp > 0.5) !== (sq > 0.5)) return sp > 0.5 ? 1 : -1;
            return p.name < q.name ? -1 : p.name > q.name ? 1 : 0;
          });
        var cx = x;
        kids.forEach(function (k) {
          var kw = w * value(k) / value(n);
          if (kw >= 0.5) { groups.push({ n: k, x: cx, w: kw, d: d }); layout(k, cx, kw, d + 1); }
          cx += kw;
        });
      }
      if (fv > 0) layout(focus, 0, width, chain.length);
      groups.forEach(function (g) {
        if (g.d > maxDepth) maxDepth = g.d;
        var n = g.n, isMatch = re && n.kind !== 'root' && re.test(n.name);
        if (isMatch && !(function () { for (var p = n.parent; p; p = p.parent) if (re.test(p.name)) return true; return false; })())
          matched += value(n);
        var node = svg('g', {
          'class': 'frame ' + (n.wait > n.cpu ? 'wait' : 'cpu') + (isMatch ? ' match' : '') + (g.d < chain.length - 1 ? ' dim' : ''),
          'data-name': n.name, 'data-cpu-s': n.cpu.toFixed(6), 'data-wait-s': n.wait.toFixed(6),
          transform: 'translate(' + g.x.toFixed(2) + ',' + (g.d * ROW) + ')'
        }, [svg('rect', { width: Math.max(0.5, g.w - 0.5).toFixed(2), height: ROW - 1, fill: color(n), rx: 2 })]);
        if (mode === 'both' && n.kind !== 'root' && n.kind !== 'process' && n.cpu > 0 && n.wait > 0) {
          /* a frame that both computes and waits below it: its bar shows the two parts */
          var cw = (g.w - 0.5) * n.cpu / (n.cpu + n.wait);
          node.firstChild.setAttribute('fill', mixColor(n, true));
          node.appendChild(svg('rect', { x: cw.toFixed(2), width: Math.max(0.5, g.w - 0.5 - cw).toFixed(2), height: ROW - 1, fill: mixColor(n, false) }));
        }
        var chars = Math.floor((g.w - 6) / 6.6);
        if (chars >= 3) {
          var label = n.name.length > chars ? n.name.slice(0, chars - 1) + '…' : n.name;
          node.appendChild(svg('text', { x: 3, y: ROW - 5, text: label }));
        }
        node.addEventListener('click', function () { focus = n === focus && n.parent ? n.parent : n; hideTip(); draw(); });
        node.addEventListener('mousemove', function (ev) { showTip(ev, tipText(n)); });
        node.addEventListener('mouseleave', hideTip);
        root.appendChild(node);
        drawn++;
      });
      var h = (maxDepth + 1) * ROW + 2;
      root.setAttribute('width', width);
      root.setAttribute('height', h);
      root.setAttribute('viewBox', '0 0 ' + width + ' ' + h);
      found.textContent = re ? 'matched ' + secs(matched) + ' (' + pct(matched, value(tree)) + ')' : '';
      document.body.setAttribute('data-frames', String(drawn));
    }
    return { node: wrap, draw: draw, frames: function () { return drawn; } };
  }

  /* ---- tables ---- */

  function sortableTable(id, columns, rows, sortIndex) {
    var table = el('table', { id: id });
    var state = { col: sortIndex, desc: true };
    function render() {
      while (table.firstChild) table.removeChild(table.firstChild);
      table.appendChild(el('tr', {}, columns.map(function (c, i) {
        return el('th', {
          'class': 'sort' + (c.left ? ' l' : '') + (i === state.col ? (state.desc ? ' desc' : ' asc') : ''), text: c.title, title: c.help || 'click to sort',
          onclick: function () { if (state.col === i) state.desc = !state.desc; else { state.col = i; state.desc = !c.left; } render(); }
        });
      })));
      var key = columns[state.col].key;
      rows.slice().sort(function (a, b) {
        var x = key(a), y = key(b), c = x < y ? -1 : x > y ? 1 : 0;
        return state.desc ? -c : c;
      }).forEach(function (r) {
        table.appendChild(el('tr', {}, columns.map(function (c) {
          var v = c.show ? c.show(r) : String(c.key(r));
          return el('td', { 'class': (c.left ? 'l ' : '') + (c.cls || ''), text: v, title: c.cls === 'where' ? v : null });
        })));
      });
    }
    render();
    return table;
  }

  function functionsTable(R) {
    var F = R.functions || [];
    var wrap = el('section', {}, [el('h2', { html: 'Functions <small>from the stack agent; self = as the innermost frame, total = anywhere on the stack; click a heading to sort</small>' })]);
    if (!F.length) { append(wrap, [el('p', { 'class': 'muted', text: 'No stacks were recorded.' })]); return wrap; }
    var all = num(get(R, 'stacks.user_s')) + num(get(R, 'stacks.sys_s')) + num(get(R, 'stacks.wait_s'));
    function cpu(o) { return num(o.user_s) + num(o.sys_s); }
    var cols = [
      { title: 'function', left: true, key: function (f) { return f.name; } },
      { title: 'self CPU', key: function (f) { return cpu(f.self); }, show: function (f) { return secs(cpu(f.self)); } },
      { title: 'self waiting', key: function (f) { return num(f.self.wait_s); }, show: function (f) { return secs(f.self.wait_s); } },
      { title: 'total CPU', key: function (f) { return cpu(f.total); }, show: function (f) { return secs(cpu(f.total)); } },
      { title: 'total waiting', key: function (f) { return num(f.total.wait_s); }, show: function (f) { return secs(f.total.wait_s); } },
      { title: 'total %', key: function (f) { return cpu(f.total) + num(f.total.wait_s); }, show: function (f) { return pct(cpu(f.total) + num(f.total.wait_s), all); } },
      { title: 'where', left: true, cls: 'where', key: function (f) { return f.file ? f.file + ':' + f.line : f.module; } }
    ];
    append(wrap, [el('div', { 'class': 'scroll' }, [sortableTable('functions-table', cols, F, 1)])]);
    return wrap;
  }

  function waitsTable(R) {
    var W = get(R, 'waits.reasons') || [];
    var total = num(get(R, 'time.waiting_s'));
    var wrap = el('div', {}, [el('h2', { html: 'Why it waits <small>ticks with nothing running</small>' })]);
    if (!W.length) { append(wrap, [el('p', { 'class': 'muted', text: 'It never waited with nothing running.' })]); return wrap; }
    var sum = W.reduce(function (a, w) { return a + num(w.seconds); }, 0) || total;
    var cols = [
      { title: 'kind', left: true, key: function (w) { return w.kind; }, show: function (w) { return w.kind; } },
      { title: 'seconds', key: function (w) { return num(w.seconds); }, show: function (w) { return secs(w.seconds); } },
      { title: 'share', key: function (w) { return num(w.seconds); }, show: function (w) { return pct(w.seconds, sum); } },
      { title: 'ticks', key: function (w) { return num(w.samples); } },
      { title: 'syscall', left: true, key: function (w) { return w.syscall || ''; } },
      { title: 'wait channel', left: true, key: function (w) { return w.wchan || ''; } }
    ];
    append(wrap, [el('div', { 'class': 'scroll' }, [sortableTable('waits-table', cols, W, 1)])]);
    return wrap;
  }

  function threadsTable(R, names) {
    var TH = R.threads || [];
    var wrap = el('div', {}, [el('h2', { html: 'Busiest threads <small>CPU while observed</small>' })]);
    var cols = [
      { title: 'thread', left: true, key: function (t) { return names.thread(t.pid, t.tid); } },
      { title: 'process', left: true, key: function (t) { return names.process(t.pid); } },
      { title: 'user', key: function (t) { return num(t.user_s); }, show: function (t) { return secs(t.user_s); } },
      { title: 'system', key: function (t) { return num(t.sys_s); }, show: function (t) { return secs(t.sys_s); } },
      { title: 'running', key: function (t) { return num(t.running_s); }, show: function (t) { return pct(t.running_s, num(t.running_s) + num(t.waiting_s) + num(t.runq_s)); } },
      { title: 'waiting', key: function (t) { return num(t.waiting_s); }, show: function (t) { return secs(t.waiting_s); } },
      { title: 'mostly waits on', left: true, key: function (t) { var w = (t.waits || [])[0]; return w ? w.kind + ' (' + (w.syscall || '?') + ')' : ''; } }
    ];
    append(wrap, [el('div', { 'class': 'scroll' }, [sortableTable('threads-table', cols, TH, 2)])]);
    return wrap;
  }

  function costCard(R) {
    var P = R.profiler || {}, S = R.stacks || {};
    var wall = num(get(R, 'time.wall_s'));
    return el('section', {}, [el('h2', { text: "The profiler's own cost" }), el('p', { id: 'profiler-cost', text:
      'wlprof used ' + secs(num(P.user_s) + num(P.sys_s)) + ' of CPU (' + pct(num(P.user_s) + num(P.sys_s), wall) + ' of the wall time); ' +
      num(P.late_ticks) + ' late and ' + num(P.missed_ticks) + ' missed ticks (latest by ' + secs(P.max_lateness_s) + '); ' +
      num(P.proc_read_errors) + ' /proc reads failed' +
      (R.stacks ? '; the stack agent recorded ' + num(S.cpu_samples) + ' CPU samples and ' + num(S.waits) + ' waits, dropped ' + num(S.dropped) : '') + '.' })]);
  }

  /* ---- the page ---- */

  function main() {
    var data = document.getElementById('wlprof-data');
    var R = JSON.parse(data.textContent);
    var names = makeNames(R);
    var app = document.getElementById('app');
    tip = el('div', { 'class': 'tooltip', id: 'tooltip' });
    document.body.appendChild(tip);
    var head = headline(R);
    var when = R.started_at ? ' · started ' + R.started_at : '';
    append(app, [
      el('h1', { text: 'wlprof: ' + (head.title || 'profile') }),
      el('div', { 'class': 'sub', text: 'Where the wall time went: computing (on a CPU) or waiting (off it), and why' + when + ' · ' + (R.schema || '') }),
      el('pre', { id: 'errors' }),
      el('div', { 'class': 'headline' }, [head.left, verdict(R)])
    ]);
    var tl = timeline(R, names);
    app.appendChild(tl.node);
    var fg = flame(R, names);
    app.appendChild(fg.node);
    app.appendChild(functionsTable(R));
    app.appendChild(el('div', { 'class': 'tables' }, [waitsTable(R), threadsTable(R, names)]));
    app.appendChild(costCard(R));
    if (tl.draw) tl.draw();
    fg.draw();
    window.addEventListener('resize', function () { fg.draw(); });
    if (window.ResizeObserver) { /* e.g. a scroll bar appearing after the first layout */
      var ro = new ResizeObserver(function (entries) {
        entries.forEach(function (en) {
          var svgEl = en.target.querySelector('svg');
          if (!svgEl || Math.abs(parseFloat(svgEl.getAttribute('width')) - en.target.clientWidth) < 1) return;
          if (/timeline/.test(en.target.className) && tl.draw) tl.draw(); else if (/flame/.test(en.target.className)) fg.draw();
        });
      });
      document.querySelectorAll('.chart').forEach(function (c) { ro.observe(c); });
    }
    document.body.setAttribute('data-lanes', String(tl.lanes));
    if (!errors.length) document.body.setAttribute('data-status', 'ok');
  }

  function start() {
    try { main(); } catch (e) { recordError((e && e.stack) || e); }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
