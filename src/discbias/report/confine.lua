-- Refuse every resource the build did not make, before pandoc embeds or links it.
--
-- `--embed-resources` inlines any image, script or stylesheet the document names, wherever it is
-- (`![](/home/me/.ssh/id_rsa)` becomes a data URI in the HTML), and a URL would be fetched. Text
-- from a configuration, a data file or a bundle may reach the Markdown, so this filter (run first)
-- allows only:
--   * images and raw-HTML resources (src, srcset, poster, data, stylesheet href, CSS url()) that are
--     relative or absolute paths inside DISCBIAS_RESOURCE_ROOT (the build folder), or data: URIs;
--   * links (<a href>, Markdown links) to anything but file: URLs and local paths outside the root.
-- Anything else stops pandoc with an error naming the resource.
local root = os.getenv("DISCBIAS_RESOURCE_ROOT")
local base = os.getenv("DISCBIAS_RESOURCE_BASE")

local function normalize(p)
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." then
      if #parts == 0 then return nil end
      table.remove(parts)
    elseif seg ~= "." then
      table.insert(parts, seg)
    end
  end
  return "/" .. table.concat(parts, "/")
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function inside(path)
  if not root or not base then return false end
  path = unescape(path:gsub("[?#].*$", ""))
  if path == "" then return true end
  local full = path:sub(1, 1) == "/" and path or (base .. "/" .. path)
  local n, r = normalize(full), normalize(root)
  return n ~= nil and r ~= nil and (n == r or n:sub(1, #r + 1) == r .. "/")
end

local function scheme(s)
  return s:match("^%s*([%a][%w+.-]*):")
end

local function refuse(what, s)
  error("discbias: refused " .. what .. " " .. string.format("%q", s) ..
        ": only files the build made (inside " .. tostring(root) .. ") may be embedded or linked", 0)
end

local function check_resource(s, what)
  if s:match("^%s*#") then return end
  local sc = scheme(s)
  if sc then
    if sc:lower() ~= "data" then refuse(what, s) end
  elseif not inside(s) then
    refuse(what, s)
  end
end

local function check_link(s, what)
  local sc = scheme(s)
  if sc then
    if sc:lower() == "file" then refuse(what, s) end
  elseif not s:match("^%s*#") and not inside(s) then
    refuse(what, s)
  end
end

local function check_attribute(tag, name, value)
  name = name:lower()
  if name == "href" then
    if tag == "a" then check_link(value, "link") else check_resource(value, "resource") end
  elseif name == "srcset" or name == "imagesrcset" then
    -- "a.png 1x, /elsewhere/b.png 2x": every candidate's URL
    for candidate in value:gmatch("[^,]+") do
      local url = candidate:match("^%s*(%S+)")
      if url then check_resource(url, "resource") end
    end
  elseif name == "src" or name == "poster" or name == "data" or name == "xlink:href"
      or name == "background" or name == "action" or name == "formaction" or name == "codebase" then
    check_resource(value, "resource")
  end
end

local function check_html(text)
  for tag, attrs in text:gmatch("<%s*([%a][%w-]*)([^>]*)>") do
    tag = tag:lower()
    -- quoted values whole (a value may hold spaces and commas), then unquoted ones
    for name, value in attrs:gmatch("([%a][%w:-]*)%s*=%s*\"([^\"]*)\"") do check_attribute(tag, name, value) end
    for name, value in attrs:gmatch("([%a][%w:-]*)%s*=%s*'([^']*)'") do check_attribute(tag, name, value) end
    for name, value in attrs:gmatch("([%a][%w:-]*)%s*=%s*([^\"'%s>][^%s>]*)") do check_attribute(tag, name, value) end
  end
  for value in text:gmatch("url%s*%(%s*[\"']?([^\"')%s]*)") do
    check_resource(value, "resource")
  end
  if text:lower():match("@import") then refuse("stylesheet import in", text:sub(1, 80)) end
end

function Image(el)
  check_resource(el.src, "image")
end

function Link(el)
  check_link(el.target, "link")
end

function RawInline(el)
  if el.format:match("html") then check_html(el.text) end
end

function RawBlock(el)
  if el.format:match("html") then check_html(el.text) end
end
