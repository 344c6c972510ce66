// cutover console: the page's one script. It keeps countdowns current and,
// on a deployment's page, applies the server-sent events of
// /deployments/ID/events to the progress bars, the state and the spread;
// when the state changes it reloads the page for that state's buttons and
// timeline. Without it, every page still works (it only stops moving).
(function () {
  'use strict';

  function human(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d >= 4) { return d + 'd ' + h + 'h'; }
    if (s >= 3600) { return (d * 24 + h) + 'h' + m + 'm'; }
    if (s >= 60) { return m + 'm' + (s % 60) + 's'; }
    return s + 's';
  }

  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }

  function countdowns() {
    document.querySelectorAll('time[data-countdown]').forEach(function (t) {
      var ms = Date.parse(t.dateTime) - Date.now();
      t.textContent = ms > 0 ? 'in ' + human(ms) : 'now';
    });
  }
  countdowns();
  setInterval(countdowns, 1000);

  var root = document.getElementById('deployment');
  if (!root || !root.dataset.watch || !window.EventSource) { return; }
  var shown = root.dataset.state;
  var list = document.getElementById('agents');
  var seen = {};

  function row(name) {
    var li = list.querySelector('li[data-agent="' + CSS.escape(name) + '"]');
    if (li) { return li; }
    var empty = list.querySelector('li.empty');
    if (empty) { empty.remove(); }
    li = document.createElement('li');
    li.dataset.agent = name;
    var label = document.createElement('label');
    label.htmlFor = 'progress-' + name;
    var strong = document.createElement('strong');
    strong.textContent = name;
    label.append(strong, ' ');
    ['astate', 'pct', 'detail'].forEach(function (cls) {
      var span = document.createElement('span');
      span.className = cls;
      label.append(span, ' ');
    });
    var bar = document.createElement('progress');
    bar.id = 'progress-' + name;
    bar.max = 100;
    bar.value = 0;
    li.append(label, bar);
    list.append(li);
    return li;
  }

  function apply(ev) {
    var state = document.getElementById('state');
    state.textContent = ev.state;
    state.dataset.state = ev.state;
    ev.agents.forEach(function (a) {
      var li = row(a.name);
      var now = Date.now(), prev = seen[a.name], rate = '';
      if (prev && a.state === 'STAGING' && now > prev.t && a.transferred > prev.b) {
        rate = ', ' + bytes((a.transferred - prev.b) * 1000 / (now - prev.t)) + '/s';
      }
      seen[a.name] = { t: now, b: a.transferred };
      li.querySelector('.astate').textContent = a.state;
      li.querySelector('.pct').textContent = a.percent + ' %';
      li.querySelector('.detail').textContent = bytes(a.transferred) + ' received, release ' + bytes(a.bytes) + rate;
      var bar = li.querySelector('progress');
      bar.value = a.percent;
      bar.textContent = a.percent + ' %';
    });
    if (ev.spread) {
      document.getElementById('spread-value').textContent = ev.spread;
      document.getElementById('spread').hidden = false;
    }
  }

  var source = new EventSource(root.dataset.watch);
  source.addEventListener('deployment', function (e) {
    var ev = JSON.parse(e.data);
    apply(ev);
    if (ev.state !== shown) {
      // A new state has other buttons and timeline rows: render it anew.
      source.close();
      window.location.reload();
    }
  });
  source.addEventListener('end', function () { source.close(); });
})();
