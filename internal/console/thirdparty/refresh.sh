#!/usr/bin/env bash
# Re-fetches the browser code the console and the example dashboard run, from
# the npm registry at the versions pinned below, with each package's licence.
# Change a version here, run this script, try the console and the dashboard
# (go test ./internal/console/... ./internal/apitest/browser/ with chromium
# installed), and commit the script together with the files it wrote.
set -euo pipefail
cd "$(dirname "$0")"

# graphiql 4 is the newest release that still ships a prebuilt UMD bundle
# (graphiql 5 is ES modules only, which would need a build step); its bundle
# includes graphql-ws for subscriptions. React 18 is the newest React with
# UMD builds, and graphiql 4 supports it.
GRAPHIQL=4.1.2
REACT=18.3.1
GRAPHQL_WS=6.0.6

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

unpack() { # package@version → directory of its contents
  local dir="$tmp/${1//[@\/]/_}"
  mkdir -p "$dir"
  (cd "$tmp" && npm pack --silent "$1" >/dev/null)
  tar -xzf "$tmp"/$(cd "$tmp" && ls -t *.tgz | head -n 1) -C "$dir" --strip-components=1
  rm -f "$tmp"/*.tgz
  echo "$dir"
}

g=$(unpack "graphiql@$GRAPHIQL")
cp "$g/graphiql.min.js" "$g/graphiql.min.css" .
cp "$g/LICENSE" LICENSE.graphiql

r=$(unpack "react@$REACT")
cp "$r/umd/react.production.min.js" .
cp "$r/LICENSE" LICENSE.react

rd=$(unpack "react-dom@$REACT")
cp "$rd/umd/react-dom.production.min.js" .
cp "$rd/LICENSE" LICENSE.react-dom

ws=$(unpack "graphql-ws@$GRAPHQL_WS")
cp "$ws/umd/graphql-ws.min.js" .
cp "$ws/LICENSE.md" LICENSE.graphql-ws

# Source maps point at files that are not shipped; the browser would ask
# for them when its developer tools are open.
sed -i '/^\/\/# sourceMappingURL=/d' graphiql.min.js react.production.min.js react-dom.production.min.js graphql-ws.min.js

cat > VERSIONS <<VERSIONS
graphiql $GRAPHIQL: graphiql.min.js graphiql.min.css LICENSE.graphiql
react $REACT: react.production.min.js LICENSE.react
react-dom $REACT: react-dom.production.min.js LICENSE.react-dom
graphql-ws $GRAPHQL_WS: graphql-ws.min.js LICENSE.graphql-ws
VERSIONS
sha256sum *.js *.css > SHA256SUMS
