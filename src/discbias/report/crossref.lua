-- Resolve Quarto-style cross-references (@fig-x, @tbl-x, @sec-x) for plain pandoc.
-- Figures and tables are numbered in document order; a citation whose key is a known id becomes
-- a link "Figure N" / "Table N". In HTML the captions get their "Figure N:" prefix; Typst numbers
-- figures and tables itself, with the same counters.
local kinds = { fig = "Figure", tbl = "Table", sec = "Section" }
local numbers = {}
local counters = { fig = 0, tbl = 0, sec = 0 }

local function prefix_of(id)
  return id and id:match("^(%a+)%-")
end

local function register(id)
  local p = prefix_of(id)
  if p and kinds[p] and not numbers[id] then
    counters[p] = counters[p] + 1
    numbers[id] = { kind = kinds[p], n = counters[p] }
  end
end

local function caption_prefix(el, id)
  if FORMAT:match("typst") then return el end
  local info = numbers[id]
  if not info or not el.caption or not el.caption.long or #el.caption.long == 0 then return el end
  local first = el.caption.long[1]
  if first and first.content then
    table.insert(first.content, 1, pandoc.Space())
    table.insert(first.content, 1, pandoc.Strong({ pandoc.Str(info.kind .. " " .. info.n .. ":") }))
  end
  return el
end

-- A publication table (discbias.report.tables.PubTable.to_qmd) is a Div {#tbl-x .pubtable}
-- holding Typst and HTML raw blocks around its Markdown caption: in HTML the caption paragraph
-- gets the "Table N:" prefix; in Typst the Div is unwrapped (the raw figure carries <tbl-x>).
local function pubtable(el)
  local id = el.identifier
  if not (el.classes:includes("pubtable") and numbers[id]) then return nil end
  if FORMAT:match("typst") then return el.content end
  for _, b in ipairs(el.content) do
    if b.t == "Para" then
      table.insert(b.content, 1, pandoc.Space())
      table.insert(b.content, 1, pandoc.Strong({ pandoc.Str(numbers[id].kind .. " " .. numbers[id].n .. ":") }))
      break
    end
  end
  return el
end

-- Figures are sized in inches at the width they are printed at (discbias.report.style), so
-- Typst prints them at their own size: a relative width from the template is dropped there
-- (HTML keeps it and scales the image to the screen).
local function natural_size(el)
  if FORMAT:match("typst") and el.attributes["width"] and el.attributes["width"]:match("%%$") then
    el.attributes["width"] = nil
    return el
  end
end

local collect = {
  Div = function(el) if el.classes:includes("pubtable") then register(el.identifier) end end,
  Figure = function(el) register(el.identifier) end,
  Table = function(el) register(el.identifier) end,
  Header = function(el) register(el.identifier) end,
}

local resolve = {
  Div = pubtable,
  Image = natural_size,
  Figure = function(el) return caption_prefix(el, el.identifier) end,
  Table = function(el) return caption_prefix(el, el.identifier) end,
  Cite = function(el)
    local out = {}
    for i, c in ipairs(el.citations) do
      local info = numbers[c.id]
      if not info then return nil end
      if i > 1 then table.insert(out, pandoc.Str(", ")) end
      table.insert(out, pandoc.Link({ pandoc.Str(info.kind .. "\u{a0}" .. info.n) }, "#" .. c.id))
    end
    return out
  end,
}

function Pandoc(doc)
  doc:walk(collect)
  for id, _ in pairs(numbers) do end
  local missing = {}
  doc:walk({ Cite = function(el)
    for _, c in ipairs(el.citations) do
      if prefix_of(c.id) and kinds[prefix_of(c.id)] and not numbers[c.id] then table.insert(missing, c.id) end
    end
  end })
  if #missing > 0 then
    error("unresolved cross-reference(s): " .. table.concat(missing, ", "))
  end
  return doc:walk(resolve)
end
