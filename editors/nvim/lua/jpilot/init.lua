--- jpilot for Neovim: starts `jpilot serve`, shows its suggestions as ghost text
--- (`vim.lsp.inline_completion`, Neovim 0.12) or as completion items (0.10/0.11), and adds
--- an accept keymap, `:JpilotStatus`, `:JpilotExplain` and `:checkhealth jpilot`.
---
--- require('jpilot').setup{
---   python = '~/.venv/bin/python',   -- or cmd = { 'jpilot', 'serve' }
---   model_path = '/models/my-bundle', device = 'cpu', max_tokens = 48,
---   keymaps = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>' },
--- }
local M = {}

local NAME = 'jpilot'
local INLINE = 'textDocument/inlineCompletion'
local COMPLETION = 'textDocument/completion'
local STATUS_COMMAND = 'jpilot.status'

---@class jpilot.Keymaps
---@field accept? string|string[]|false  accept the ghost text (falls back to the key itself)
---@field next? string|false             show the next suggestion
---@field prev? string|false             show the previous suggestion
---@field trigger? string|false          ask for completion items now (without ghost text)

---@class jpilot.Options
---@field cmd? string[]            command that starts the server (default: python or `jpilot serve`)
---@field python? string           Python with jpilot installed: runs `python -m jpilot.lsp.cli serve`
---@field filetypes? string[]
---@field root_markers? string[]
---@field model_path? string       shortcut for settings.model.path
---@field device? string           shortcut for settings.model.device ("auto", "cpu", "cuda")
---@field max_tokens? integer      shortcut for settings.completion.maxTokens
---@field settings? table          server settings, as in docs/EDITORS.md (camelCase keys)
---@field ghost_text? boolean      use inline completion where Neovim has it (default true)
---@field keymaps? jpilot.Keymaps

---@type jpilot.Options
M.defaults = {
  cmd = nil,
  python = nil,
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', 'requirements.txt', '.git' },
  model_path = nil,
  device = nil,
  max_tokens = nil,
  settings = {},
  ghost_text = true,
  keymaps = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>', trigger = '<M-\\>' },
}

--- What the plugin knows at run time (read by :JpilotStatus and :checkhealth jpilot).
M.state = {
  options = nil, ---@type jpilot.Options?
  config = nil, ---@type table? the resolved client config
  last_latency_ms = nil, ---@type number?
  requests = 0,
  pending = {}, ---@type table<string, number> "client:request id" -> start time (ns)
}

local has_011 = vim.fn.has('nvim-0.11') == 1

--- Return v, or nil for JSON null (vim.NIL).
local function value(v)
  if v == vim.NIL then
    return nil
  end
  return v
end
M.value = value

--- Return the options merged over the defaults (lists are replaced, not merged).
---@param opts? jpilot.Options
---@return jpilot.Options
local function merge_options(opts)
  local out = vim.deepcopy(M.defaults)
  for key, value in pairs(opts or {}) do
    if value == vim.NIL then -- a null from a remote caller: keep the default
      value = out[key]
    elseif key == 'keymaps' or key == 'settings' then
      value = vim.tbl_deep_extend('force', out[key] or {}, value)
    end
    out[key] = value
  end
  return out
end

--- Return the server settings: `settings` plus the model_path/device/max_tokens shortcuts.
---@param opts jpilot.Options
---@return table
function M.server_settings(opts)
  local settings = vim.deepcopy(opts.settings or {})
  local function put(section, key, value)
    if value ~= nil then
      settings[section] = settings[section] or {}
      settings[section][key] = value
    end
  end
  put('model', 'path', opts.model_path and vim.fn.expand(opts.model_path))
  put('model', 'device', opts.device)
  put('completion', 'maxTokens', opts.max_tokens)
  return settings
end

--- Return the command that starts the server.
---@param opts jpilot.Options
---@return string[]
function M.server_cmd(opts)
  if opts.cmd and #opts.cmd > 0 then
    return opts.cmd
  end
  if opts.python and opts.python ~= '' then
    return { vim.fn.expand(opts.python), '-m', 'jpilot.lsp.cli', 'serve' }
  end
  return { 'jpilot', 'serve' }
end

--- Return the running jpilot client for a buffer (or any buffer), if there is one.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.client(bufnr)
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  return get({ name = NAME, bufnr = bufnr })[1]
end

--- Send a request and wait for its answer (bounded).
---@return table? result, string? error
function M.request_sync(client, method, params, bufnr, timeout_ms)
  local response, err
  if has_011 then
    response, err = client:request_sync(method, params, timeout_ms, bufnr)
  else
    response, err = client.request_sync(method, params, timeout_ms, bufnr)
  end
  if not response then
    return nil, err or 'no answer'
  end
  if response.err then
    return nil, response.err.message or vim.inspect(response.err)
  end
  return response.result, nil
end

--- Return the server's own status (`jpilot.status`), or nil and why not.
---@param timeout_ms? integer
---@return table?, string?
function M.server_status(timeout_ms)
  local client = M.client()
  if not client then
    return nil, 'the jpilot server is not running'
  end
  local provider = client.server_capabilities.executeCommandProvider
  local commands = type(provider) == 'table' and provider.commands or {}
  if not vim.list_contains(commands, STATUS_COMMAND) then
    return nil, 'the server has no ' .. STATUS_COMMAND .. ' command'
  end
  return M.request_sync(client, 'workspace/executeCommand',
    { command = STATUS_COMMAND, arguments = {} }, nil, timeout_ms or 5000)
end

--- Measure request latency from the client's side (LspRequest autocmd).
local function track_latency(args)
  local data = args.data or {}
  local req = data.request or {}
  if req.method ~= INLINE and req.method ~= COMPLETION then
    return
  end
  local client = vim.lsp.get_client_by_id(data.client_id)
  if not client or client.name ~= NAME then
    return
  end
  local key = data.client_id .. ':' .. tostring(data.request_id)
  if req.type == 'pending' then
    M.state.pending[key] = vim.uv.hrtime()
  elseif M.state.pending[key] then
    if req.type == 'complete' then
      M.state.last_latency_ms = (vim.uv.hrtime() - M.state.pending[key]) / 1e6
      M.state.requests = M.state.requests + 1
    end
    M.state.pending[key] = nil
  end
end

--- Map one or more keys in insert mode for a buffer.
local function imap(keys, rhs, bufnr, desc, expr)
  if not keys then
    return
  end
  for _, key in ipairs(type(keys) == 'table' and keys or { keys }) do
    vim.keymap.set('i', key, rhs(key), { buffer = bufnr, expr = expr, desc = desc })
  end
end

--- After a jpilot completion item is accepted, insert all of it: Neovim inserts a
--- plain-text item's `word`, which stops at the first whitespace.
---@param client vim.lsp.Client
---@param bufnr integer
local function complete_whole_item(client, bufnr)
  vim.api.nvim_create_autocmd('CompleteDone', {
    group = vim.api.nvim_create_augroup('jpilot.complete.' .. bufnr, { clear = true }),
    buffer = bufnr,
    callback = function()
      local reason = vim.v.event and vim.v.event.reason
      if reason and reason ~= 'accept' then
        return
      end
      local done = vim.v.completed_item or {}
      local lsp = vim.tbl_get(done, 'user_data', 'nvim', 'lsp') or {}
      local item = lsp.completion_item
      if not item or (lsp.client_id and lsp.client_id ~= client.id) or item.insertTextFormat == 2 then
        return -- not jpilot's, or a snippet (Neovim expands those itself)
      end
      local full = item.textEdit and item.textEdit.newText or item.insertText
      local word = done.word or ''
      if not full or full == word then
        return
      end
      local row, col = unpack(vim.api.nvim_win_get_cursor(0))
      local start = col - #word
      local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
      if start < 0 or line:sub(start + 1, col) ~= word then
        return -- the buffer is not as Neovim left it; change nothing
      end
      local lines = vim.split(full, '\n', { plain = true })
      vim.api.nvim_buf_set_text(bufnr, row - 1, start, row - 1, col, lines)
      local last = #lines == 1 and start + #lines[1] or #lines[#lines]
      vim.api.nvim_win_set_cursor(0, { row + #lines - 1, last })
    end,
  })
end

--- Turn on ghost text (0.12) or completion items (0.10/0.11) for a buffer jpilot attached to.
---@param client vim.lsp.Client
---@param bufnr integer
local function on_attach(client, bufnr)
  local opts = M.state.options or M.defaults
  local keymaps = opts.keymaps or {}
  local inline = vim.lsp.inline_completion
  local supports = client.server_capabilities.inlineCompletionProvider
  if opts.ghost_text ~= false and inline and supports then
    inline.enable(true, { bufnr = bufnr })
    imap(keymaps.accept, function(key)
      return function()
        if not inline.get({ bufnr = bufnr }) then
          return key -- nothing to accept: the key does what it always does
        end
      end
    end, bufnr, 'jpilot: accept the suggestion', true)
    imap(keymaps.next, function()
      return function() inline.select({ bufnr = bufnr, count = 1 }) end
    end, bufnr, 'jpilot: next suggestion')
    imap(keymaps.prev, function()
      return function() inline.select({ bufnr = bufnr, count = -1 }) end
    end, bufnr, 'jpilot: previous suggestion')
  elseif vim.lsp.completion and vim.lsp.completion.enable then -- 0.11: completion items
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
    complete_whole_item(client, bufnr)
    imap(keymaps.trigger, function()
      return function() vim.lsp.completion.get() end
    end, bufnr, 'jpilot: suggest now')
  else -- 0.10: omnifunc, <C-x><C-o>
    vim.bo[bufnr].omnifunc = 'v:lua.vim.lsp.omnifunc'
    complete_whole_item(client, bufnr)
    imap(keymaps.trigger, function()
      return function() return '<C-x><C-o>' end
    end, bufnr, 'jpilot: suggest now', true)
  end
end

--- Start (0.10) or enable (0.11+) the server with these options.
---@param opts jpilot.Options
local function start_server(opts)
  local settings = M.server_settings(opts)
  if vim.tbl_isempty(settings) then
    settings = vim.empty_dict() -- or it is sent as a JSON list, not an object
  end
  local config = {
    cmd = M.server_cmd(opts),
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = settings,
    settings = { jpilot = settings },
    on_exit = function(code, signal)
      M.state.last_exit = { code = code, signal = signal }
      if code ~= 0 or signal ~= 0 then
        vim.schedule(function()
          vim.notify(('jpilot: the server exited (code %d, signal %d). Its messages are in '
            .. ':lua vim.cmd.edit(vim.lsp.log.get_filename()); :checkhealth jpilot shows what '
            .. 'is missing. Reopen the file (:edit) to restart it.'):format(code, signal),
            vim.log.levels.ERROR)
        end)
      end
    end,
  }
  M.state.config = config
  if vim.fn.executable(config.cmd[1]) == 0 then
    vim.notify(('jpilot: `%s` was not found or is not executable, so jpilot cannot start. '
      .. 'Install jpilot (python -m pip install /path/to/jpilot, a checkout) and pass python = "/path/to/python" '
      .. 'or cmd = { "/path/to/jpilot", "serve" } to setup(); see :checkhealth jpilot')
      :format(config.cmd[1]), vim.log.levels.ERROR)
  end
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config(NAME, config)
    vim.lsp.enable(NAME)
    return
  end
  vim.api.nvim_create_autocmd('FileType', { -- Neovim 0.10
    group = vim.api.nvim_create_augroup('jpilot.start', { clear = true }),
    pattern = opts.filetypes,
    callback = function(args)
      local root = vim.fs.root(args.buf, opts.root_markers)
      vim.lsp.start(vim.tbl_extend('force', config, { name = NAME, root_dir = root }),
        { bufnr = args.buf })
    end,
  })
end

--- Configure and start jpilot.
---@param opts? jpilot.Options
function M.setup(opts)
  opts = merge_options(opts)
  M.state.options = opts
  local group = vim.api.nvim_create_augroup('jpilot', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        on_attach(client, args.buf)
      end
    end,
  })
  vim.api.nvim_create_autocmd('LspRequest', { group = group, callback = track_latency })
  vim.api.nvim_create_user_command('JpilotStatus', function()
    vim.api.nvim_echo({ { table.concat(require('jpilot.commands').status_lines(), '\n') } },
      true, {})
  end, { desc = 'jpilot: server, model and latency' })
  vim.api.nvim_create_user_command('JpilotExplain', function(cmd)
    require('jpilot.commands').explain(cmd)
  end, { range = true, desc = 'jpilot: explain the selection' })
  start_server(opts)
end

return M
