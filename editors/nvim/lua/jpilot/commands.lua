--- :JpilotExplain and :JpilotStatus.
local jpilot = require('jpilot')

local C = {}

--- Return the lines to show for an explain command's answer.
---@param result any
---@return string[]
function C.explanation_lines(result)
  result = jpilot.value(result)
  if type(result) == 'string' then
    return vim.split(result, '\n', { plain = true })
  end
  local lines = {}
  local explanation = type(result) == 'table' and jpilot.value(result.explanation) or nil
  local comment = type(result) == 'table' and jpilot.value(result.comment) or nil
  if explanation and vim.trim(explanation) ~= '' then
    vim.list_extend(lines, vim.split(explanation, '\n', { plain = true }))
  end
  if comment and vim.trim(comment) ~= '' then
    if #lines > 0 then
      table.insert(lines, '')
    end
    table.insert(lines, '```python')
    vim.list_extend(lines, vim.split(comment, '\n', { plain = true }))
    table.insert(lines, '```')
  end
  if #lines == 0 then
    lines = { '(no explanation: is the model loaded? see :JpilotStatus)' }
  end
  return lines
end

--- Explain the selection with the server's explain command, when it has one.
---@param range { line1: integer, line2: integer, range: integer }
function C.explain(range)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = jpilot.client(bufnr)
  if not client then
    vim.notify('jpilot: the server is not running for this buffer (see :checkhealth jpilot)',
      vim.log.levels.WARN)
    return
  end
  local provider = client.server_capabilities.executeCommandProvider
  local explain
  for _, name in ipairs(type(provider) == 'table' and provider.commands or {}) do
    if name:lower():find('explain', 1, true) then
      explain = name
      break
    end
  end
  if not explain then
    vim.notify('jpilot: this server has no explain command; enable the docs plugin '
      .. '(settings = { plugins = { docs = { enabled = true } } }) with a jpilot that ships it',
      vim.log.levels.WARN)
    return
  end
  local params
  if range.range > 0 then
    local last = vim.fn.getline(range.line2)
    params = vim.lsp.util.make_given_range_params({ range.line1, 0 },
      { range.line2, math.max(#last - 1, 0) }, bufnr, client.offset_encoding)
  else
    params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  end
  -- jpilot's explain command takes (uri, range) and answers {line, comment, explanation}.
  local arguments = { params.textDocument.uri, params.range }
  local result, err = jpilot.request_sync(client, 'workspace/executeCommand',
    { command = explain, arguments = arguments }, bufnr, 60000)
  if err then
    vim.notify('jpilot: ' .. explain .. ' failed: ' .. err, vim.log.levels.ERROR)
    return
  end
  local lines = C.explanation_lines(result)
  vim.lsp.util.open_floating_preview(lines, 'markdown', { border = 'rounded' })
  return lines
end

--- Return the :JpilotStatus lines.
---@return string[]
function C.status_lines()
  local lines = {}
  local client = jpilot.client()
  if not client then
    table.insert(lines, 'jpilot: not running (open a Python file; see :checkhealth jpilot)')
  else
    table.insert(lines, ('jpilot: running (client %d, cmd %s, root %s)'):format(
      client.id, table.concat(client.config.cmd or {}, ' '), client.root_dir or '(none)'))
    local status, err = jpilot.server_status()
    if status then
      local model = status.model or {}
      local why = jpilot.value(model.error)
      local configured = jpilot.server_settings(jpilot.state.options or jpilot.defaults).model
      table.insert(lines, ('model: %s %s%s'):format(jpilot.value(model.state) or '?',
        jpilot.value(model.path) or (configured or {}).path or '(embedded default)',
        why and (' - ' .. tostring(why)) or ''))
      local plugins = status.plugins or {}
      table.insert(lines, 'plugins: ' .. table.concat(plugins.loaded or {}, ', '))
      for name, why in pairs(jpilot.value(plugins.failed) or {}) do
        table.insert(lines, ('plugin %s not loaded: %s'):format(name, tostring(why)))
      end
    else
      table.insert(lines, 'model: unknown (' .. err .. ')')
    end
    local inline = vim.lsp.inline_completion
    local mode = (inline and inline.is_enabled({ bufnr = 0 })) and 'ghost text'
      or 'completion items'
    table.insert(lines, 'suggestions: ' .. mode)
  end
  local ms = jpilot.state.last_latency_ms
  table.insert(lines, 'last latency: ' .. (ms and ('%.0f ms'):format(ms) or 'no suggestion yet'))
  return lines
end

return C
