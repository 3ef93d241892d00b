// The web page: ask, show the answer or the abstention, highlight quotes in their passages.
// Every piece of article text goes into the page through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// Build an element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

async function fetchJSON(url, options = {}) {
  const response = await fetch(url, options);
  let body = null;
  if (response.status !== 204) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return { status: response.status, body };
}

// Offsets from the server count Unicode code points (Python), JS strings count UTF-16 units:
// slice arrays of code points so an emoji before a quote cannot shift the highlight.
function codePoints(text) {
  return Array.from(text);
}

// The quote, with the answer in bold when it lies inside it.
function quoteNodes(quote, quoteStart, answer, answerSpan, source) {
  const chars = codePoints(quote);
  let a = -1;
  let b = -1;
  if (answerSpan && answerSpan.source === source) {
    a = answerSpan.start - quoteStart;
    b = answerSpan.end - quoteStart;
  }
  if (!(a >= 0 && b <= chars.length && a < b) && answer) {
    const at = quote.indexOf(answer);
    if (at >= 0) {
      a = codePoints(quote.slice(0, at)).length;
      b = a + codePoints(answer).length;
    }
  }
  if (a >= 0 && b <= chars.length && a < b) {
    return [
      chars.slice(0, a).join(""),
      el("strong", {}, chars.slice(a, b).join("")),
      chars.slice(b).join(""),
    ];
  }
  return [quote];
}

// The passage that contains the citation, with the quoted span marked.
function citedPassage(citation, passages, answer, answerSpan) {
  const passage = passages.find(
    (p) => p.source === citation.source && p.start <= citation.start && citation.end <= p.end,
  );
  const block = el("blockquote", { class: "passage" });
  if (!passage) {
    block.append(el("mark", {}, ...quoteNodes(citation.quote, citation.start, answer, answerSpan,
      citation.source)));
    return block;
  }
  const chars = codePoints(passage.text);
  const a = citation.start - passage.start;
  const b = citation.end - passage.start;
  const quote = chars.slice(a, b).join("");
  block.append(
    chars.slice(0, a).join(""),
    el("mark", {}, ...quoteNodes(quote, citation.start, answer, answerSpan, citation.source)),
    chars.slice(b).join(""),
  );
  return block;
}

function sourceLine(title, published, source) {
  return el(
    "p",
    { class: "meta" },
    published ? el("time", { datetime: published }, published) : "undated",
    " · ",
    el("span", { class: "source" }, source),
  );
}

function renderAnswer(data) {
  const box = $("answer-box");
  box.replaceChildren();
  const percent = Math.round((data.confidence || 0) * 100);
  const meter = el("meter", { min: "0", max: "1", value: String(data.confidence || 0),
    "aria-label": "confidence" });
  if (data.answerable && data.answer !== null) {
    box.append(
      el("p", { id: "answer", class: "answer" }, data.answer),
      el("p", { class: "confidence" }, meter, ` Confidence ${percent}%`),
    );
  } else {
    box.append(
      el("p", { id: "abstention", class: "abstention" }, "Not in the articles"),
      el("p", { class: "explain" },
        "The indexed articles don't answer this question, so no answer is given. " +
        "The closest passages are listed below."),
      el("p", { class: "confidence" }, meter, ` Confidence ${percent}%`),
    );
  }

  const citations = $("citations");
  citations.replaceChildren();
  for (const c of data.citations || []) {
    citations.append(
      el("li", { class: "citation" },
        el("h4", {}, c.title || c.source),
        sourceLine(c.title, c.published, c.source),
        citedPassage(c, data.passages || [], data.answer, data.answer_span)),
    );
  }
  $("citations-box").hidden = !(data.citations || []).length;

  const passages = $("passages");
  passages.replaceChildren();
  for (const p of data.passages || []) {
    passages.append(
      el("li", {},
        el("p", { class: "meta" }, el("span", { class: "source" }, p.source),
          ` · score ${Number(p.score).toFixed(3)}`),
        el("p", { class: "passage-text" }, p.text)),
    );
  }
  $("passage-count").textContent = String((data.passages || []).length);
  $("result").hidden = false;
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) {
    $("status").textContent = "Type a question first.";
    return;
  }
  const button = $("ask-button");
  button.disabled = true;
  $("result").hidden = true;
  $("status").textContent = "Searching the articles…";
  try {
    const { body } = await fetchJSON("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question }),
    });
    renderAnswer(body);
    $("result").dataset.question = question;
    $("status").textContent = body.answerable ? "Answered." : "Not in the articles.";
    $("result-heading").focus();
  } catch (error) {
    $("status").textContent = `Could not answer: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function loadDocuments() {
  const list = $("documents");
  try {
    const { body } = await fetchJSON("/documents");
    list.replaceChildren();
    for (const d of body.documents) {
      list.append(
        el("li", { class: "document" },
          el("span", { class: "doc-title" }, d.title || d.source),
          sourceLine(d.title, d.published, d.source)),
      );
    }
    $("document-count").textContent = String(body.total);
  } catch (error) {
    list.replaceChildren(el("li", {}, `Could not list the articles: ${error.message}`));
    $("document-count").textContent = "?";
  }
}

async function addDocument(event) {
  event.preventDefault();
  const status = $("add-status");
  const payload = { text: $("add-text").value };
  if ($("add-title").value.trim()) payload.title = $("add-title").value.trim();
  if ($("add-published").value) payload.published = $("add-published").value;
  status.textContent = "Adding…";
  try {
    const { body } = await fetchJSON("/documents", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${$("add-token").value}`,
      },
      body: JSON.stringify(payload),
    });
    status.textContent = `${body.status === "unchanged" ? "Already indexed" : "Added"}: ` +
      `${body.source}`;
    $("add-text").value = "";
    await loadDocuments();
  } catch (error) {
    status.textContent = `Not added: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("refresh-documents").addEventListener("click", loadDocuments);
  $("add-form").addEventListener("submit", addDocument);
  loadDocuments();
});
