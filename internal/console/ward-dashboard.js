// A reference ward dashboard: how a bedside client should use HMIS's live
// lab results. Plain browser JavaScript and the graphql-ws client, no build
// step; read it top to bottom. What it shows:
//
//  1. Sign in with `login`; keep the tokens in memory only; refresh the
//     access token before it expires.
//  2. Subscribe first, then load what is already there: the subscriptions
//     start from now, and the list query (unacknowledgedCriticalResults)
//     brings the alerts raised before. Both are applied by result ID, so
//     whichever arrives first, nothing shows twice.
//  3. Remember the eventId of the last event of each subscription. When the
//     connection drops (network, server restart, token expiry), reconnect
//     and subscribe again with `after: <that eventId>`: the server sends
//     what was missed, in order, then live events. An error that carries
//     extensions.resumeAfter gives the cursor to resume from. Only
//     CURSOR_EXPIRED (the server no longer holds that far back), or a feed
//     that has had no event yet, means reloading the list and starting from
//     now.
//  4. Acknowledge with acknowledgeCriticalResult; the ACKNOWLEDGED event
//     clears the alert on every dashboard of the ward, this one included.
(function () {
  'use strict';
  var endpoint = location.origin + '/graphql';
  var wsEndpoint = endpoint.replace(/^http/, 'ws');

  // --- state ---------------------------------------------------------------
  var session = null; // {accessToken, refreshToken, expiresAt, user}
  var refreshTimer = null;
  var wardId = '';
  var client = null; // the graphql-ws client of the current connection
  var retryTimer = null;
  var retries = 0;
  var renewals = 0; // token renewals since the last connection that held
  var cursors = { critical: null, verified: null }; // last eventId seen, per subscription
  var alerts = new Map(); // result ID → critical result not yet acknowledged
  var acknowledged = new Set(); // result IDs acknowledged: never shown again
  var verified = []; // newest first
  var seen = { critical: new Set(), verified: new Set() }; // eventIds applied, per subscription

  var $ = function (id) { return document.getElementById(id); };

  // --- HTTP ----------------------------------------------------------------
  // anonymous: login and refreshToken go without the access token, which
  // may be the expired or unknown one that is being replaced (the server
  // refuses a request with a bad token outright).
  function call(query, variables, anonymous) {
    var headers = { 'Content-Type': 'application/json' };
    if (session && !anonymous) headers.Authorization = 'Bearer ' + session.accessToken;
    return fetch(endpoint, { method: 'POST', headers: headers, body: JSON.stringify({ query: query, variables: variables }) })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.errors && body.errors.length) {
          var e = new Error(body.errors[0].message);
          e.code = body.errors[0].extensions && body.errors[0].extensions.code;
          throw e;
        }
        return body.data;
      });
  }

  var AUTH = 'accessToken refreshToken expiresAt user { username roles }';

  function signedIn(payload) {
    session = payload;
    $('who').textContent = payload.user.username;
    clearTimeout(refreshTimer);
    var wait = Math.max(5000, new Date(payload.expiresAt) - Date.now() - 60000);
    refreshTimer = setTimeout(function () {
      refresh().catch(function (e) {
        if (e.code === 'UNAUTHENTICATED') return signedOut(e); // the session is over
        if (session) signedIn(session); // unreachable: try again in a little while
      });
    }, wait);
  }

  function refresh() {
    if (!session) return Promise.reject(new Error('not signed in'));
    return call('mutation($in: RefreshTokenInput!) { refreshToken(input: $in) { ' + AUTH + ' } }',
      { in: { refreshToken: session.refreshToken } }, true)
      .then(function (d) { signedIn(d.refreshToken); });
  }

  // The session ended (logout elsewhere, password change, a server with a
  // new token secret): sign in again. The ward and the cursors are kept, so
  // the dashboard resumes where it was.
  function signedOut(err) {
    session = null;
    stop();
    setConnection('offline');
    $('board').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = 'Signed out' + (err && err.message ? ': ' + err.message : '') + '. Sign in again.';
  }

  $('signin').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('signin-error').textContent = '';
    call('mutation($in: LoginInput!) { login(input: $in) { ' + AUTH + ' } }',
      { in: { username: $('username').value, password: $('password').value } }, true)
      .then(function (d) {
        $('password').value = '';
        signedIn(d.login);
        $('signin').hidden = true;
        $('board').hidden = false;
        return loadWards();
      })
      .then(function () { if (wardId) start(); })
      .catch(function (e) { $('signin-error').textContent = e.message; });
  });

  function loadWards() {
    return call('{ wards(first: 100, orderBy: {field: CODE}) { edges { node { id code name } } } }').then(function (d) {
      var select = $('ward');
      select.length = 1;
      d.wards.edges.forEach(function (e) {
        var o = document.createElement('option');
        o.value = e.node.id;
        o.textContent = e.node.code + ' — ' + e.node.name;
        select.appendChild(o);
      });
      select.value = wardId;
    });
  }

  $('ward').addEventListener('change', function () {
    stop();
    wardId = $('ward').value;
    cursors = { critical: null, verified: null };
    alerts.clear();
    acknowledged.clear();
    verified = [];
    seen = { critical: new Set(), verified: new Set() };
    render();
    if (wardId) start();
  });

  // --- live ----------------------------------------------------------------
  var RESULT = 'id numericValue codedValue textValue unit flag verifiedAt ' +
    'patient { mrn givenName familyName } notify { givenName familyName }';

  var CRITICAL = 'subscription($ward: ID, $after: String) { criticalLabResult(wardId: $ward, after: $after) {' +
    ' eventId type test { name } result { ' + RESULT + ' } } }';
  var VERIFIED = 'subscription($ward: ID, $after: String) { labResultVerified(wardId: $ward, after: $after) {' +
    ' eventId type occurredAt test { name } result { ' + RESULT + ' } } }';
  var UNACKNOWLEDGED = 'query($ward: ID, $after: Cursor) { unacknowledgedCriticalResults(wardId: $ward, first: 100, after: $after) {' +
    ' pageInfo { hasNextPage endCursor } edges { node { ' + RESULT + ' item { test { name } } } } } }';

  function start() {
    var resuming = cursors.critical !== null || cursors.verified !== null;
    var mine = graphqlWs.createClient({
      url: wsEndpoint,
      // Read at every connection, so a refreshed token is the one sent.
      connectionParams: function () { return { Authorization: 'Bearer ' + session.accessToken }; },
      // Reconnecting is done below, not by the client: a new subscription
      // must carry the latest cursor, and the client would resend the old one.
      retryAttempts: 0,
      on: {
        connected: function () {
          if (client !== mine) return;
          retries = 0;
          renewals = 0;
          setConnection('live', resuming ? 'live, resumed' : 'live');
        }
      }
    });
    client = mine;
    listen(mine, 'critical', CRITICAL, function (ev) {
      if (ev.type === 'CRITICAL') showAlert(Object.assign({ testName: ev.test.name }, ev.result));
      else clearAlert(ev.result.id);
    });
    listen(mine, 'verified', VERIFIED, function (ev) {
      verified.unshift({ test: ev.test.name, type: ev.type, result: ev.result });
      verified.length = Math.min(verified.length, 20);
    });
    // A feed that has seen no event yet has no cursor to resume from: for
    // the alerts, the list is the authority, so load it (again).
    if (cursors.critical === null) loadAlerts(null);
  }

  function listen(mine, feed, query, apply) {
    mine.subscribe({ query: query, variables: { ward: wardId, after: cursors[feed] } }, {
      next: function (msg) {
        if (client !== mine) return;
        var ev = msg.data && (msg.data.criticalLabResult || msg.data.labResultVerified);
        if (!ev) return failed(mine, msg.errors, feed);
        cursors[feed] = ev.eventId;
        // IDs are positions in one stream per subscription: the two
        // subscriptions can carry the same ID, one subscription never twice.
        if (seen[feed].has(ev.eventId)) return;
        seen[feed].add(ev.eventId);
        apply(ev);
        render();
      },
      error: function (err) { failed(mine, err, feed); },
      // The server ended the stream without an error: it is over, resume.
      complete: function () { failed(mine, null, feed); }
    });
  }

  // One failure ends the connection and both subscriptions; they come back
  // together with their cursors.
  function failed(mine, err, feed) {
    if (client !== mine) return;
    stop();
    if (err) console.error('ward dashboard: ' + (feed || 'subscription') + ' ended:', JSON.stringify(err.code ? { code: err.code, reason: err.reason } : err));
    var errors = Array.isArray(err) ? err : [];
    var code = errors.length && errors[0].extensions && errors[0].extensions.code;
    var resumeAfter = errors.length && errors[0].extensions && errors[0].extensions.resumeAfter;
    if (resumeAfter && feed) cursors[feed] = resumeAfter;
    if (code === 'CURSOR_EXPIRED') {
      // Events were lost to this dashboard: start afresh from the list.
      cursors = { critical: null, verified: null };
      alerts.clear();
      render();
    }
    var closeCode = err && typeof err.code === 'number' ? err.code : 0;
    if (code === 'UNAUTHENTICATED' || closeCode === 4401 || closeCode === 4403) {
      // The access token expired or is unknown (a server with another
      // token secret): renew it, then reconnect. A server that refuses
      // the renewed one too has ended the session.
      if (renewals++ >= 2) return signedOut(new Error('the server refuses the session'));
      setConnection('reconnecting', 'reconnecting: renewing the session');
      refresh().then(function () {
        if (!client && wardId) start();
      }, function (e) {
        if (e.code === 'UNAUTHENTICATED') return signedOut(e);
        retryLater(); // the server is unreachable: renew when it is back
      });
      return;
    }
    if (code === 'FORBIDDEN' || code === 'BAD_USER_INPUT') {
      $('board-error').textContent = errors[0].message;
      setConnection('offline');
      return;
    }
    retryLater();
  }

  // Network or server down: back off, 0.5 s doubling to 8 s.
  function retryLater() {
    var delay = Math.min(8000, 500 * Math.pow(2, retries++));
    setConnection('reconnecting', 'reconnecting…');
    retryTimer = setTimeout(start, delay);
  }

  function stop() {
    clearTimeout(retryTimer);
    if (client) {
      var c = client;
      client = null;
      c.dispose();
    }
  }

  function loadAlerts(after) {
    var ward = wardId;
    return call(UNACKNOWLEDGED, { ward: ward, after: after }).then(function (d) {
      if (ward !== wardId) return;
      var c = d.unacknowledgedCriticalResults;
      c.edges.forEach(function (e) { showAlert(Object.assign({ testName: e.node.item.test.name }, e.node)); });
      render();
      if (c.pageInfo.hasNextPage) return loadAlerts(c.pageInfo.endCursor);
    }).catch(function (e) { $('board-error').textContent = e.message; });
  }

  function showAlert(r) {
    if (!acknowledged.has(r.id)) alerts.set(r.id, r);
  }

  function clearAlert(id) {
    acknowledged.add(id);
    alerts.delete(id);
  }

  function acknowledge(id, button) {
    button.disabled = true;
    call('mutation($id: ID!) { acknowledgeCriticalResult(id: $id) { id acknowledgedAt } }', { id: id })
      .then(function () { clearAlert(id); render(); })
      .catch(function (e) { button.disabled = false; $('board-error').textContent = e.message; });
  }

  // --- view ----------------------------------------------------------------
  function setConnection(state, text) {
    var el = $('connection');
    el.dataset.state = state;
    el.textContent = text || state;
  }

  function value(r) {
    var v = r.numericValue !== null && r.numericValue !== undefined ? String(r.numericValue) : (r.codedValue || r.textValue || '');
    return v + (r.unit ? ' ' + r.unit : '');
  }

  function row(r, testName, extra) {
    var li = document.createElement('li');
    li.dataset.result = r.id;
    var cells = [
      ['patient', r.patient.familyName + ', ' + r.patient.givenName + ' (' + r.patient.mrn + ')'],
      ['test', testName],
      ['value', value(r)],
      ['flag ' + (r.flag || ''), r.flag || ''],
      ['when', r.verifiedAt ? new Date(r.verifiedAt).toLocaleTimeString() : '']
    ];
    cells.forEach(function (c) {
      var span = document.createElement('span');
      span.className = c[0];
      span.textContent = c[1]; // textContent, never innerHTML: the values are data
      li.appendChild(span);
    });
    if (extra) li.appendChild(extra);
    return li;
  }

  function render() {
    var list = $('criticals');
    list.replaceChildren();
    alerts.forEach(function (r) {
      var b = document.createElement('button');
      b.textContent = 'Acknowledge';
      b.className = 'acknowledge';
      b.addEventListener('click', function () { acknowledge(r.id, b); });
      var li = row(r, r.testName, b);
      li.title = 'Tell: ' + r.notify.map(function (s) { return s.givenName + ' ' + s.familyName; }).join(', ');
      list.appendChild(li);
    });
    $('critical-count').textContent = String(alerts.size);
    var feed = $('verified');
    feed.replaceChildren();
    verified.forEach(function (v) { feed.appendChild(row(v.result, v.test + (v.type === 'AMENDED' ? ' (amended)' : ''))); });
  }
})();
