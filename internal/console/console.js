// The HMIS console: GraphiQL, with a sign-in form that puts the access
// token into the Headers tab. GraphiQL sends those headers with every
// request and, for subscriptions, as the connection_init payload of its
// graphql-transport-ws connection, where the server reads Authorization.
(function () {
  'use strict';
  var endpoint = location.origin + '/graphql';
  var wsEndpoint = endpoint.replace(/^http/, 'ws');

  var intro = [
    '# Welcome to HMIS. Sign in above (demo users:',
    '# admin, doctor, nurse, labtech, reception,',
    '# patient …): the token goes into the Headers',
    '# tab as {"Authorization": "Bearer …"}.',
    '# Then run this with Ctrl-Enter:',
    '',
    '{',
    '  me { username roles }',
    '}',
    ''
  ].join('\n');

  var session = null; // {accessToken, refreshToken, expiresAt, user}
  var refreshTimer = null;
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var fetcher = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: wsEndpoint });

  function headers() {
    var h = session ? { Authorization: 'Bearer ' + session.accessToken } : {};
    return JSON.stringify(h, null, 2);
  }

  function render() {
    // A new headers value replaces the Headers tab's contents.
    root.render(React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: intro,
      headers: headers(),
      defaultHeaders: headers(),
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false
    }));
  }

  function status(text, isError) {
    var el = document.getElementById('signin-status');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }

  function call(query, variables) {
    return fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: query, variables: variables })
    }).then(function (r) { return r.json(); }).then(function (body) {
      if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
      return body.data;
    });
  }

  var authFields = 'accessToken refreshToken expiresAt user { username roles }';
  var loginFields = authFields + ' mfaRequired challenge { token expiresAt enrolmentRequired }';
  var challenge = null; // the second step a login owes, if any

  // Roles that require a second factor get a challenge instead of tokens;
  // the code (or a recovery code) typed next completes it with verifyMfa.
  function askSecondFactor(c) {
    challenge = c;
    document.getElementById('signed-out').hidden = true;
    document.getElementById('second-factor').hidden = false;
    if (c.enrolmentRequired) {
      status('This role requires a second factor, not yet set up: enrol with enrollTotp and confirmTotp (see the README).', true);
      return;
    }
    status('Enter the code from your authenticator app.', false);
    document.getElementById('mfa-code').focus();
  }

  function verifySecondFactor() {
    var field = document.getElementById('mfa-code');
    var value = field.value.trim();
    var input = { challengeToken: challenge.token };
    if (/^[0-9]{6}$/.test(value)) input.code = value; else input.recoveryCode = value;
    field.value = '';
    call('mutation($in: VerifyMfaInput!) { verifyMfa(input: $in) { ' + authFields + ' } }', { in: input })
      .then(function (d) {
        challenge = null;
        document.getElementById('second-factor').hidden = true;
        signedIn(d.verifyMfa);
      })
      .catch(function (e) { status(e.message, true); });
  }

  function signedIn(payload) {
    session = payload;
    document.getElementById('who').textContent = payload.user.username + ' (' + payload.user.roles.join(', ') + ')';
    document.getElementById('signed-out').hidden = true;
    document.getElementById('signed-in').hidden = false;
    status('', false);
    render();
    // Access tokens are short-lived: trade the refresh token for new ones a
    // minute before this one expires.
    clearTimeout(refreshTimer);
    var wait = Math.max(5000, new Date(payload.expiresAt) - Date.now() - 60000);
    refreshTimer = setTimeout(function () {
      call('mutation($in: RefreshTokenInput!) { refreshToken(input: $in) { ' + authFields + ' } }',
        { in: { refreshToken: session.refreshToken } })
        .then(function (d) { signedIn(d.refreshToken); })
        .catch(function (e) { signOut(); status('Session ended: ' + e.message + '. Sign in again.', true); });
    }, wait);
  }

  function signOut() {
    var ending = session;
    session = null;
    clearTimeout(refreshTimer);
    document.getElementById('signed-out').hidden = false;
    document.getElementById('second-factor').hidden = true;
    document.getElementById('signed-in').hidden = true;
    render();
    if (ending) {
      fetch(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + ending.accessToken },
        body: JSON.stringify({ query: 'mutation { logout }' })
      }).catch(function () {});
    }
  }

  document.getElementById('signin').addEventListener('submit', function (ev) {
    ev.preventDefault();
    status('Signing in…', false);
    var password = document.getElementById('password');
    call('mutation($in: LoginInput!) { login(input: $in) { ' + loginFields + ' } }', {
      in: { username: document.getElementById('username').value, password: password.value }
    }).then(function (d) {
      password.value = '';
      if (d.login.mfaRequired) askSecondFactor(d.login.challenge); else signedIn(d.login);
    }).catch(function (e) { status(e.message, true); });
  });
  document.getElementById('mfa-button').addEventListener('click', verifySecondFactor);
  document.getElementById('mfa-code').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') { ev.preventDefault(); verifySecondFactor(); }
  });
  document.getElementById('signout-button').addEventListener('click', signOut);

  render();
})();
