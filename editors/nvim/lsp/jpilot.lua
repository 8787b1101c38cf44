-- jpilot's base config for `vim.lsp.config` / `vim.lsp.enable` (Neovim 0.11+).
--
--   vim.lsp.enable('jpilot')                        -- with these defaults, or
--   vim.lsp.config('jpilot', { cmd = { '/path/to/venv/bin/jpilot', 'serve' } })
--
-- `require('jpilot').setup{...}` does both, and adds ghost text, keymaps and commands.
-- Server settings go in `init_options` and in `settings.jpilot` (the server reads both;
-- see docs/EDITORS.md), e.g. `settings = { jpilot = { model = { path = '/models/x' } } }`.

---@type vim.lsp.Config
return {
  cmd = { 'jpilot', 'serve' },
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', 'requirements.txt', '.git' },
  init_options = {},
  settings = { jpilot = {} },
}
