--- `:checkhealth jpilot`: Neovim features, Python, the server, the model bundle, latency.
local M = {}

local health = vim.health

--- Run a command and return its exit code and output (bounded by timeout_ms).
---@return integer code, string output
local function run(cmd, timeout_ms)
  local ok, proc = pcall(vim.system, cmd, { text = true })
  if not ok then
    return -1, tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  return result.code, vim.trim((result.stdout or '') .. (result.stderr or ''))
end

--- Return the interpreter a command runs: itself when it is a Python, else its shebang.
---@param exe string
---@return string?
local function python_of(exe)
  if vim.fs.basename(exe):match('^python') then
    return exe
  end
  local path = vim.fn.exepath(exe)
  local fd = path ~= '' and io.open(path, 'r') or nil
  if not fd then
    return nil
  end
  local first = fd:read('*l') or ''
  fd:close()
  return first:match('^#!%s*(%S*python[%w%.]*)')
end

local function check_neovim()
  health.start('jpilot: Neovim')
  if vim.lsp.inline_completion then
    health.ok('vim.lsp.inline_completion is available: suggestions show as ghost text')
  elseif vim.fn.has('nvim-0.11') == 1 then
    health.warn('Neovim 0.11 has no inline completion: suggestions come as completion items',
      { 'Neovim 0.12+ shows them as ghost text' })
  else
    health.warn('Neovim 0.10: suggestions come through omnifunc (<C-x><C-o>)',
      { 'Neovim 0.12+ shows them as ghost text' })
  end
end

---@param jpilot table the jpilot module
local function check_server(jpilot)
  health.start('jpilot: server')
  local opts = jpilot.state.options
  if not opts then
    health.warn("require('jpilot').setup{} has not been called",
      { "add require('jpilot').setup{} to your init.lua" })
    opts = jpilot.defaults
  end
  local cmd = jpilot.server_cmd(opts)
  local exe = cmd[1]
  if vim.fn.executable(exe) == 0 then
    health.error(('`%s` was not found or is not executable'):format(exe), {
      'install jpilot: python3 -m venv ~/.jpilot && ~/.jpilot/bin/pip install /path/to/jpilot',
      "then setup{ python = '~/.jpilot/bin/python' } or setup{ cmd = { '~/.jpilot/bin/jpilot', 'serve' } }",
    })
    return
  end
  health.ok('server command: ' .. table.concat(cmd, ' '))

  local python = python_of(exe)
  if python then
    local code, out = run({ python, '-c',
      'import sys, jpilot.lsp.cli as c; print(sys.version.split()[0], c.package_version())' }, 30000)
    if code == 0 then
      local py, version = out:match('(%S+)%s+(%S+)$')
      health.ok(('python %s (%s), jpilot %s'):format(py or '?', python, version or '?'))
    else
      health.error(('%s cannot import jpilot: %s'):format(python, out:match('[^\n]*$')),
        { ('%s -m pip install /path/to/jpilot'):format(python) })
    end
  else
    local code, out = run({ exe, '--version' }, 30000)
    if code == 0 then
      health.ok(out)
    else
      health.error(('`%s --version` failed: %s'):format(exe, out))
    end
  end

  local client = jpilot.client()
  if client then
    health.ok(('running: client %d, root %s'):format(client.id, client.root_dir or '(none)'))
  elseif jpilot.state.last_exit then
    health.error(('the server exited (code %d, signal %d)'):format(jpilot.state.last_exit.code,
      jpilot.state.last_exit.signal), { 'see the LSP log: :lua vim.cmd.edit(vim.lsp.log.get_filename())' })
  else
    health.info('not running now: it starts when you open a ' .. table.concat(opts.filetypes or {}, '/') .. ' file')
  end
end

---@param jpilot table the jpilot module
local function check_model(jpilot)
  health.start('jpilot: model')
  local settings = jpilot.server_settings(jpilot.state.options or jpilot.defaults)
  local path = settings.model and settings.model.path or ''
  if path == '' then
    health.ok('model.path is not set: the embedded default model')
  elseif vim.fn.isdirectory(path) == 0 then
    health.error(('model bundle %s is not a folder'):format(path),
      { 'point model_path at a folder written by `jpilot model export`, or unset it' })
  else
    local missing = {}
    for _, name in ipairs({ 'model.onnx', 'tokenizer.json', 'jpilot.json' }) do
      if vim.fn.filereadable(vim.fs.joinpath(path, name)) == 0 then
        table.insert(missing, name)
      end
    end
    if #missing > 0 then
      health.error(('model bundle %s has no %s'):format(path, table.concat(missing, ', ')),
        { 're-export it: jpilot model export CHECKPOINT ' .. path })
    else
      health.ok('model bundle ' .. path)
    end
  end
  local status, err = jpilot.server_status(5000)
  local model = status and jpilot.value(status.model)
  if model then
    local state = jpilot.value(model.state)
    if state == 'ready' then
      health.ok(('loaded by the server in %.2f s'):format(jpilot.value(model.load_seconds) or 0))
      -- which model-written features this model's measured scores (or your settings) turn on
      local features = jpilot.value(model.features)
      if type(features) == 'table' then
        local off = {}
        for _, name in ipairs({ 'summary', 'docstring', 'explain', 'hints' }) do
          if features[name] == true then
            health.ok(name .. ': on')
          else
            table.insert(off, name)
          end
        end
        if #off > 0 then
          health.info(table.concat(off, ', ') .. ': off (the model was not measured good enough)',
            { 'for a model that can: jpilot model pull Salesforce/codegen-350M-mono',
              'or turn one on anyway, e.g. settings = { docs = { summary = true } }' })
        end
      end
    elseif state == 'loading' then
      health.info('the server is still loading it')
    else
      health.error('the server could not load it: ' .. tostring(jpilot.value(model.error)),
        { 'fix model_path (see above), then reopen the file (:edit) to restart the server' })
    end
  elseif jpilot.client() then
    health.info('model state unknown: ' .. tostring(err))
  end
  local plugins = status and jpilot.value(status.plugins)
  for name, why in pairs(plugins and jpilot.value(plugins.failed) or {}) do
    health.warn(('plugin %s not loaded: %s'):format(name, tostring(why)),
      { 'fix or uninstall it, or turn it off: settings = { plugins = { ["' .. name
        .. '"] = { enabled = false } } }' })
  end
  local ms = jpilot.state.last_latency_ms
  if ms then
    health.ok(('last suggestion latency: %.0f ms (%d requests)'):format(ms, jpilot.state.requests))
  else
    health.info('last suggestion latency: no suggestion yet')
  end
end

function M.check()
  local jpilot = require('jpilot')
  check_neovim()
  check_server(jpilot)
  check_model(jpilot)
end

return M
