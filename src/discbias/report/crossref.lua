-- Resolve Quarto-style cross-references (@fig-x, @tbl-x, @sec-x) for plain pandoc.
--
-- Figures and tables are numbered in document order (Typst numbers them itself, with the same
-- counters). Sections get the number `--number-sections` and Typst's "1.1" numbering print:
-- one counter per heading level, reset by the levels above, skipping headings marked
-- `.unnumbered`; a reference to an unnumbered heading prints its `label` attribute
-- (`{#sec-appendix-a .unnumbered label="Appendix A"}`) or, without one, its text.
-- A citation whose key is a known id becomes a link "Figure N" / "Table N" / "Section N.M"; the
-- remaining citations are left to citeproc, which must run after this filter.
-- In HTML the captions get their "Figure N:" prefix and structured authors become plain text.
local kinds = { fig = "Figure", tbl = "Table", sec = "Section" }
local numbers = {}
local counters = { fig = 0, tbl = 0 }
local levels = {}

local function prefix_of(id)
  return id and id:match("^(%a+)%-")
end

local function register(id)
  local p = prefix_of(id)
  if p and counters[p] and not numbers[id] then
    counters[p] = counters[p] + 1
    numbers[id] = { kind = kinds[p], n = tostring(counters[p]) }
  end
end

local function register_header(el)
  if el.classes:includes("unnumbered") then
    if el.identifier ~= "" then
      local text = el.attributes["label"] or pandoc.utils.stringify(el.content)
      numbers[el.identifier] = { kind = nil, n = text }
    end
    return
  end
  levels[el.level] = (levels[el.level] or 0) + 1
  for l = el.level + 1, 10 do levels[l] = nil end
  local parts = {}
  for l = 1, el.level do table.insert(parts, tostring(levels[l] or 0)) end
  if el.identifier ~= "" and prefix_of(el.identifier) == "sec" then
    numbers[el.identifier] = { kind = "Section", n = table.concat(parts, ".") }
  end
end

local function caption_prefix(el, id)
  if FORMAT:match("typst") or FORMAT:match("latex") then return el end
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
  if FORMAT:match("latex") then  -- the table's own LaTeX (caption and label in it), nothing else
    local out = {}
    for _, b in ipairs(el.content) do
      if b.t == "RawBlock" and b.format == "latex" then table.insert(out, b) end
    end
    return out
  end
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
  Header = function(el) register_header(el) end,
}

local function link_text(info)
  if info.kind then return info.kind .. "\u{a0}" .. info.n end
  return info.n
end

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
      table.insert(out, pandoc.Link({ pandoc.Str(link_text(info)) }, "#" .. c.id))
    end
    return out
  end,
}

-- HTML: pandoc's template prints an author as a plain value; turn {name, affiliation} into text.
local function flatten_authors(meta)
  if FORMAT:match("typst") or not meta.author then return meta end
  local authors = meta.author
  if authors.t == "MetaMap" or (type(authors) == "table" and authors.name) then authors = { authors } end
  local out = {}
  for _, a in ipairs(authors) do
    if type(a) == "table" and a.name and a.affiliation and FORMAT:match("latex") then
      -- LaTeX sets the author line unbroken (a centred tabular): the affiliation on a line of its own
      table.insert(out, pandoc.MetaInlines({ pandoc.Str(pandoc.utils.stringify(a.name)), pandoc.LineBreak(),
                                             pandoc.Str(pandoc.utils.stringify(a.affiliation)) }))
    elseif type(a) == "table" and a.name then
      local s = pandoc.utils.stringify(a.name)
      if a.affiliation then
        local aff = pandoc.utils.stringify(a.affiliation)
        -- "Name (Affiliation)", unless the affiliation has parentheses of its own: nested ones
        -- ("(Independent replication (discbias project))") read badly, so a comma separates them
        if aff:find("[()]") then s = s .. ", " .. aff else s = s .. " (" .. aff .. ")" end
      end
      table.insert(out, pandoc.MetaInlines({ pandoc.Str(s) }))
    else
      table.insert(out, a)
    end
  end
  meta.author = out
  return meta
end

-- Typst: pandoc's template writes each keyword bare into a Typst array; quote them.
local function quote_keywords(meta)
  if not FORMAT:match("typst") or not meta.keywords then return meta end
  local out = {}
  for _, k in ipairs(meta.keywords) do
    local s = pandoc.utils.stringify(k):gsub("\\", "\\\\"):gsub('"', '\\"')
    table.insert(out, pandoc.MetaInlines({ pandoc.RawInline("typst", '"' .. s .. '"') }))
  end
  meta.keywords = out
  return meta
end

function Pandoc(doc)
  doc:walk(collect)
  local missing = {}
  doc:walk({ Cite = function(el)
    for _, c in ipairs(el.citations) do
      if prefix_of(c.id) and kinds[prefix_of(c.id)] and not numbers[c.id] then table.insert(missing, c.id) end
    end
  end })
  if #missing > 0 and os.getenv("DISCBIAS_REMOVED_ANALYSES") then
    -- analyses were removed for a data issue (their tables and figures are not made): a reference
    -- to one of their tables or figures reads "(not available)" instead of failing the render
    local gone = {}
    for _, id in ipairs(missing) do gone[id] = true end
    doc = doc:walk({ Cite = function(el)
      for _, c in ipairs(el.citations) do
        if gone[c.id] then return pandoc.Str("(not available)") end
      end
    end })
    missing = {}
  end
  if #missing > 0 then
    error("unresolved cross-reference(s): " .. table.concat(missing, ", "))
  end
  doc.meta = quote_keywords(flatten_authors(doc.meta))
  return doc:walk(resolve)
end
