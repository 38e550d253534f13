// ow-stream dashboard script. Every page works without it; it only
//  * reloads a player page by itself when its look-up state changes (long-polling a small
//    JSON endpoint instead of the <noscript> meta refresh),
//  * submits the hero picker on change and sorts the hero table in place,
//  * keeps the pipeline page's numbers fresh and shows a topic's last records when clicked.
// It never inserts HTML built from data: text goes through textContent.
(function () {
  'use strict';

  // How long the status endpoint may hold a long-poll (it caps it at 25 s).
  var WAIT_MS = 25000;
  // A long-poll answered faster than this without news did not wait: the next one waits POLL_MS.
  var MIN_WAIT_MS = 100;
  var POLL_MS = 2000;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function integer(n) { return Number(n).toLocaleString('en-US'); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function getJson(url) {
    return fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) { throw new Error(url + ': HTTP ' + r.status); }
        return r.json();
      });
  }

  // --- Player page: follow the look-up until its state changes. ---------------------------
  // A long-poll: the status endpoint answers as soon as the look-up's version is no longer the
  // one this page shows (or after WAIT_MS), and the page reloads at once when it changed.
  function followLookup() {
    var player = $('#player[data-poll="true"]');
    if (!player) { return; }
    var url = player.getAttribute('data-status-url');
    var version = player.getAttribute('data-status-version');
    var failures = 0;
    function poll() {
      var asked = Date.now();
      getJson(url + '?version=' + encodeURIComponent(version) + '&wait_ms=' + WAIT_MS)
        .then(function (status) {
          failures = 0;
          if (status.version !== version) {
            window.location.reload();
          } else if (status.polling) {
            // An answer that did not wait (a proxy, a server without long-polls): slow down.
            window.setTimeout(poll, Date.now() - asked < MIN_WAIT_MS ? POLL_MS : 0);
          }
        })
        .catch(function () {
          failures += 1;
          window.setTimeout(poll, Math.min(POLL_MS * failures, 10 * POLL_MS));
        });
    }
    poll();
  }

  // --- Hero picker: submit on change. ------------------------------------------------------
  function autosubmit() {
    $all('select[data-autosubmit]').forEach(function (select) {
      select.addEventListener('change', function () {
        if (select.form) { select.form.submit(); }
      });
    });
  }

  // --- Hero table: sort in place from data-value, keeping the URL in step. -----------------
  function sortableTables() {
    $all('table[data-sortable]').forEach(function (table) {
      var headers = $all('thead th', table);
      headers.forEach(function (th, column) {
        var link = $('a', th);
        if (!link) { return; }
        link.addEventListener('click', function (event) {
          event.preventDefault();
          var current = th.getAttribute('aria-sort');
          var numeric = column > 0;
          var ascending = current ? current === 'descending' : !numeric;
          var body = $('tbody', table);
          var rows = $all('tr', body);
          rows.sort(function (a, b) {
            var x = a.children[column].getAttribute('data-value') || '';
            var y = b.children[column].getAttribute('data-value') || '';
            if (numeric) {
              if (x === '' || y === '') { return x === '' ? (y === '' ? 0 : 1) : -1; }
              return ascending ? Number(x) - Number(y) : Number(y) - Number(x);
            }
            return ascending ? x.localeCompare(y) : y.localeCompare(x);
          });
          rows.forEach(function (row) { body.appendChild(row); });
          headers.forEach(function (other) {
            other.removeAttribute('aria-sort');
            var arrow = $('.sort-arrow', other);
            if (arrow) { arrow.parentNode.removeChild(arrow); }
          });
          th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
          link.appendChild(el('span', 'sort-arrow', ascending ? ' ▲' : ' ▼'));
          var url = new URL(link.href, window.location.href);
          url.searchParams.set('dir', ascending ? 'asc' : 'desc');
          window.history.replaceState(null, '', url.pathname + url.search);
        });
      });
    });
  }

  // --- Pipeline page: live numbers and the record panel. -----------------------------------
  function stageLabel(stage) {
    return stage.state && stage.state.state ? stage.state.state : 'running';
  }

  function lagOf(view, group, topic) {
    var total = null;
    view.groups.forEach(function (g) {
      if (g.group !== group) { return; }
      g.partitions.forEach(function (p) {
        if (p.topic === topic && p.lag !== null && p.lag !== undefined) { total = (total || 0) + p.lag; }
      });
    });
    return total;
  }

  function updatePipeline(root, view) {
    var topics = {};
    view.topics.forEach(function (t) { topics[t.name] = t; });
    var stages = {};
    view.stages.forEach(function (s) { stages[s.name] = s; });
    $all('[data-live]', root).forEach(function (node) {
      var kind = node.getAttribute('data-live');
      var topic = topics[node.getAttribute('data-topic')];
      var stage = stages[node.getAttribute('data-stage')];
      var records = function (t) {
        return t.partitions.reduce(function (sum, p) { return sum + Math.max(0, p.end_offset - p.start_offset); }, 0);
      };
      switch (kind) {
        case 'topic-records':
          if (topic) { node.textContent = topic.partitions.length ? integer(records(topic)) + ' records' : 'offsets unknown'; }
          break;
        case 'topic-rate':
          if (topic) { node.textContent = topic.messages_per_sec === null ? '—/s' : topic.messages_per_sec.toFixed(1) + '/s'; }
          break;
        case 'topic-rate-cell':
          if (topic) { node.textContent = topic.messages_per_sec === null ? '—' : topic.messages_per_sec.toFixed(1); }
          break;
        case 'topic-end':
          if (topic) { node.textContent = integer(topic.partitions.reduce(function (s, p) { return s + p.end_offset; }, 0)); }
          break;
        case 'stage-state':
          if (stage) { node.textContent = stageLabel(stage) + (stage.paused ? ' · paused' : ''); }
          break;
        case 'stage-badge':
          if (stage) { node.textContent = stageLabel(stage) + (stage.paused ? ', paused' : ''); }
          break;
        case 'stage-consumed':
          if (stage) { node.textContent = stage.metrics ? integer(stage.metrics.records_consumed) + ' records in' : stage.application_id; }
          break;
        case 'stage-consumed-total':
          if (stage && stage.metrics) { node.textContent = integer(stage.metrics.records_consumed); }
          break;
        case 'dlq':
          if (stage) { node.textContent = integer(stage.dead_letters); }
          break;
        case 'node-count':
          if (stage) { node.textContent = integer(stage.node_counts[node.getAttribute('data-node')] || 0); }
          break;
        case 'lag':
          var lag = lagOf(view, node.getAttribute('data-group'), node.getAttribute('data-topic'));
          if (lag !== null) { node.textContent = 'lag ' + integer(lag); }
          break;
        case 'generated-at':
          node.textContent = new Date(view.generated_at).toISOString().substring(11, 19) + ' UTC';
          break;
        default:
          break;
      }
    });
    $all('g.stage[data-stage]', root).forEach(function (g) {
      var stage = stages[g.getAttribute('data-stage')];
      var box = $('.stage-box', g);
      if (stage && box) { box.classList.toggle('paused', !!stage.paused); }
    });
  }

  function showRecords(panel, name) {
    panel.hidden = false;
    panel.textContent = '';
    panel.appendChild(el('h2', null, name));
    panel.appendChild(el('p', 'muted', 'Loading…'));
    getJson('/api/topics/' + encodeURIComponent(name) + '/records?limit=10').then(function (data) {
      panel.textContent = '';
      var heading = el('h2');
      heading.appendChild(el('code', null, data.topic));
      panel.appendChild(heading);
      var full = el('a', null, 'open as a page');
      full.href = '/pipeline/topics/' + encodeURIComponent(data.topic);
      panel.appendChild(full);
      if (!data.records.length) { panel.appendChild(el('p', 'empty', 'No records.')); return; }
      var table = el('table', 'records');
      var head = el('tr');
      ['Partition/offset', 'Time', 'Key', 'Value'].forEach(function (h) { head.appendChild(el('th', null, h)); });
      table.appendChild(el('thead')).appendChild(head);
      var body = el('tbody');
      data.records.forEach(function (r) {
        var row = el('tr');
        row.appendChild(el('th', null, r.partition + '/' + r.offset));
        row.appendChild(el('td', null, new Date(r.timestamp).toISOString().replace('T', ' ').substring(0, 19) + ' UTC'));
        var key = el('td');
        key.appendChild(el('pre', 'json', JSON.stringify(r.key, null, 2)));
        row.appendChild(key);
        var value = el('td');
        value.appendChild(r.value === null ? el('em', null, 'tombstone') : el('pre', 'json', JSON.stringify(r.value, null, 2)));
        if (r.error) { value.appendChild(el('p', 'notice error', r.error)); }
        row.appendChild(value);
        body.appendChild(row);
      });
      table.appendChild(body);
      panel.appendChild(table);
    }).catch(function (e) {
      panel.textContent = '';
      panel.appendChild(el('p', 'notice error', 'Could not load the records: ' + e.message));
    });
  }

  function livePipeline() {
    var root = $('#pipeline[data-pipeline-url]');
    if (!root) { return; }
    var url = root.getAttribute('data-pipeline-url');
    var every = Number(root.getAttribute('data-refresh-ms')) || POLL_MS;
    function poll() {
      if (document.hidden) { window.setTimeout(poll, every); return; }
      getJson(url).then(function (view) { updatePipeline(root, view); })
        .catch(function () { /* keep the last numbers */ })
        .then(function () { window.setTimeout(poll, every); });
    }
    window.setTimeout(poll, every);
    var panel = $('#topic-records');
    if (!panel || root.getAttribute('data-browser') !== 'true') { return; }
    $all('a[data-topic]', root).forEach(function (link) {
      link.addEventListener('click', function (event) {
        event.preventDefault();
        $all('a.topic.selected', root).forEach(function (a) { a.classList.remove('selected'); });
        if (link.classList) { link.classList.add('selected'); }
        showRecords(panel, link.getAttribute('data-topic'));
      });
    });
  }

  function start() {
    followLookup();
    autosubmit();
    sortableTables();
    livePipeline();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
