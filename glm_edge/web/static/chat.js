// The glm-edge chat page: streams /v1/chat/completions, renders answers as sanitised Markdown, keeps
// conversations and settings in localStorage. Plain browser JavaScript, no build step; the libraries are
// vendored files (static/vendor/README.md).
"use strict";

const $ = id => document.getElementById(id);
const PREFIX = "glm-edge.";

const store = {
  load(key, fallback) {
    try {
      const raw = localStorage.getItem(PREFIX + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (err) {
      return fallback;
    }
  },
  save(key, value) {
    try {
      localStorage.setItem(PREFIX + key, JSON.stringify(value));
    } catch (err) { // full or disabled storage: the page keeps working for this visit
      console.warn("localStorage:", err);
    }
  },
};

// ------------------------------------------------------------------------------------------ Markdown

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function highlight(code, lang) {
  const wanted = (lang || "").trim().split(/\s+/)[0].toLowerCase();
  try {
    if (wanted && hljs.getLanguage(wanted)) {
      return {html: hljs.highlight(code, {language: wanted, ignoreIllegals: true}).value, language: wanted};
    }
    if (code.length <= 20000) {
      const auto = hljs.highlightAuto(code);
      return {html: auto.value, language: auto.language || ""};
    }
  } catch (err) {
    console.warn("highlight.js:", err);
  }
  return {html: escapeHtml(code), language: ""};
}

const md = new marked.Marked({
  gfm: true,
  breaks: true, // a single newline is a line break, as models write it
  renderer: {
    code({text, lang}) {
      const {html, language} = highlight(text.replace(/\n$/, ""), lang);
      const cls = language ? " language-" + language.replace(/[^\w+-]/g, "") : "";
      return `<pre><code class="hljs${cls}">${html}</code></pre>\n`;
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", node => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

// Markdown -> HTML -> DOMPurify. Every string that reaches innerHTML went through here as one whole fragment.
function renderTokens(tokens, links) {
  const list = tokens.slice();
  list.links = links;
  return DOMPurify.sanitize(md.parser(list));
}

// A copy button on each code block (added to the sanitised DOM, so it is the page's own element).
function addCopyButtons(node) {
  for (const pre of node.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    if (!code || pre.querySelector(":scope > button.copy")) continue;
    const button = element("button", "copy", "copy");
    button.type = "button";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code.textContent);
        button.textContent = "copied";
      } catch (err) {
        button.textContent = "copy failed";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    });
    pre.appendChild(button);
  }
}

// An answer rendered while it streams. The top-level blocks that the Markdown lexer has closed (all but the
// last) are rendered and sanitised once, each into its own node; only the open last block is rendered again
// as text arrives, at most once per animation frame. A closed block whose source changes (a setext heading
// underline turning a paragraph into a heading, say) is rendered again from there on.
class MarkdownView {
  constructor(element) {
    this.element = element;
    this.blocks = []; // {raw, node}
    this.tail = document.createElement("div");
    this.element.appendChild(this.tail);
    this.text = "";
    this.frame = 0; // the animation frame that will render, if one is scheduled
  }

  update(text, final = false) {
    this.text = text;
    if (final) {
      if (this.frame) cancelAnimationFrame(this.frame);
      this.frame = 0;
      this.render(true);
    } else if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render(false);
      });
    }
  }

  render(final) {
    const tokens = md.lexer(this.text);
    const links = tokens.links;
    const closed = final ? tokens.length : Math.max(0, tokens.length - 1);
    let kept = 0;
    while (kept < this.blocks.length && kept < closed && this.blocks[kept].raw === tokens[kept].raw) kept++;
    if (final && Object.keys(links).length) kept = 0; // a late link definition may change earlier blocks
    for (const block of this.blocks.splice(kept)) block.node.remove();
    for (let i = kept; i < closed; i++) {
      const node = document.createElement("div");
      node.innerHTML = renderTokens([tokens[i]], links);
      addCopyButtons(node);
      this.element.insertBefore(node, this.tail);
      this.blocks.push({raw: tokens[i].raw, node});
    }
    this.tail.innerHTML = closed < tokens.length ? renderTokens(tokens.slice(closed), links) : "";
    addCopyButtons(this.tail);
  }
}

// ------------------------------------------------------------------------------------------ state

const settings = Object.assign({model: "", temperature: "", maxTokens: "", system: "", tools: "", apiKey: ""},
                               store.load("settings", {}));
let conversations = store.load("conversations", []); // [{id, title, updated, messages}]
let currentId = store.load("current", null);
let controller = null; // the AbortController of the stream in flight

function saveConversations() {
  store.save("conversations", conversations);
  store.save("current", currentId);
}

function current() {
  return conversations.find(c => c.id === currentId) || null;
}

function newConversation() {
  const conversation = {id: Date.now().toString(36) + Math.random().toString(36).slice(2, 8), title: "New chat",
                        updated: Date.now(), messages: []};
  conversations.unshift(conversation);
  currentId = conversation.id;
  saveConversations();
  return conversation;
}

function setState(state) {
  document.body.dataset.state = state;
  const streaming = state === "streaming";
  $("send").hidden = streaming;
  $("stop").hidden = !streaming;
}

function setStatus(text) {
  $("status").textContent = text || "";
}

// ------------------------------------------------------------------------------------------ views

const log = $("log");

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function element(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// One assistant message on screen: reasoning (collapsible), tool calls, Markdown content, a note.
class AssistantView {
  constructor(message) {
    this.root = element("div", "msg assistant");
    this.root.dataset.role = "assistant";
    this.reasoning = element("details", "reasoning");
    this.reasoning.append(element("summary", "", "Reasoning"), element("div", "reasoning-text"));
    this.reasoning.hidden = true;
    this.tools = element("div", "tool-calls");
    this.content = element("div", "content");
    this.markdown = new MarkdownView(this.content);
    this.note = element("div", "note");
    this.root.append(this.reasoning, this.tools, this.content, this.note);
    log.appendChild(this.root);
    if (message) this.show(message, true);
  }

  show(message, final) {
    if (message.reasoning) {
      this.reasoning.hidden = false;
      this.reasoning.querySelector(".reasoning-text").textContent = message.reasoning;
      // open while the model is thinking, folded once the answer starts or the message is done
      this.reasoning.open = !final && !message.content;
      this.reasoning.querySelector("summary").textContent =
        !final && !message.content ? "Reasoning…" : `Reasoning (${message.reasoning.length} characters)`;
    }
    if (message.tool_calls && message.tool_calls.length) {
      this.tools.replaceChildren(...message.tool_calls.map(call => {
        const box = element("div", "tool-call");
        box.append(element("span", "tool-label", "tool call "),
                   element("span", "tool-name", call.function.name || ""),
                   element("pre", "tool-arguments", prettyJson(call.function.arguments || "")));
        return box;
      }));
    }
    if (message.error) {
      this.root.classList.add("error");
      this.content.textContent = message.error;
    } else {
      this.markdown.update(message.content || "", final);
    }
    this.note.textContent = message.stopped ? "stopped" : "";
  }
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (err) {
    return text;
  }
}

function showUser(message) {
  const root = element("div", "msg user");
  root.dataset.role = "user";
  root.appendChild(element("div", "text", message.content));
  log.appendChild(root);
}

function showConversation() {
  log.replaceChildren();
  const conversation = current();
  if (conversation) {
    for (const message of conversation.messages) {
      if (message.role === "user") showUser(message);
      else new AssistantView(message);
    }
  }
  log.scrollTop = log.scrollHeight;
  showList();
}

function showList() {
  const list = $("conversations");
  list.replaceChildren(...conversations.map(conversation => {
    const item = element("li", conversation.id === currentId ? "current" : "");
    item.dataset.id = conversation.id;
    const open = element("button", "open", conversation.title);
    open.type = "button";
    open.title = conversation.title;
    open.addEventListener("click", () => {
      if (controller) return; // finish or stop the stream first
      currentId = conversation.id;
      saveConversations();
      showConversation();
    });
    const remove = element("button", "delete", "×");
    remove.type = "button";
    remove.title = "Delete this conversation";
    remove.addEventListener("click", () => {
      if (controller && conversation.id === currentId) return;
      conversations = conversations.filter(c => c.id !== conversation.id);
      if (currentId === conversation.id) currentId = conversations.length ? conversations[0].id : null;
      saveConversations();
      showConversation();
    });
    item.append(open, remove);
    return item;
  }));
}

// ------------------------------------------------------------------------------------------ server

function headers() {
  const h = {"Content-Type": "application/json"};
  if (settings.apiKey) h["Authorization"] = "Bearer " + settings.apiKey;
  return h;
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return `${res.status}: ${body.error.message}`;
  } catch (err) { /* not JSON */ }
  return `${res.status} ${res.statusText}`;
}

// The chat models: /v1/models lists every served model; the GLM-API /models listing says which are chat.
async function loadModels() {
  try {
    const [openai, glm] = await Promise.all([fetch("/v1/models", {headers: headers()}),
                                             fetch("/models", {headers: headers()})]);
    if (!openai.ok) {
      setStatus(openai.status === 401 ? "The server needs an API key." : await errorMessage(openai));
      return;
    }
    const ids = (await openai.json()).data.map(m => m.id);
    const chat = glm.ok ? new Set((await glm.json()).data.filter(m => m.object === "chat.completion").map(m => m.id))
                        : new Set(ids);
    const select = $("model");
    select.replaceChildren(...ids.filter(id => chat.has(id)).map(id => {
      const option = element("option", "", id);
      option.value = id;
      return option;
    }));
    if (settings.model && chat.has(settings.model)) select.value = settings.model;
    setStatus(select.options.length ? "" : "The server serves no chat model.");
  } catch (err) {
    setStatus("Cannot reach the server: " + err);
  }
}

function requestMessages(conversation) {
  const messages = [];
  if (settings.system.trim()) messages.push({role: "system", content: settings.system});
  for (const m of conversation.messages) {
    if (m.error) continue;
    if (m.role === "user") {
      messages.push({role: "user", content: m.content});
    } else if (m.tool_calls && m.tool_calls.length && settings.tools.trim()) {
      messages.push({role: "assistant", content: m.content || null, tool_calls: m.tool_calls});
    } else if (m.content) {
      messages.push({role: "assistant", content: m.content}); // reasoning is never sent back
    }
  }
  return messages;
}

function requestBody(conversation) {
  const body = {messages: requestMessages(conversation), stream: true};
  if ($("model").value) body.model = $("model").value;
  if (settings.temperature !== "") body.temperature = Number(settings.temperature);
  if (settings.maxTokens !== "") body.max_tokens = Number(settings.maxTokens);
  if (settings.tools.trim()) body.tools = JSON.parse(settings.tools); // checked before sending
  return body;
}

// Server-sent events: "data: ..." lines, events separated by a blank line.
function* sseEvents(buffer) {
  let cut;
  while ((cut = buffer.text.search(/\r?\n\r?\n/)) >= 0) {
    const event = buffer.text.slice(0, cut);
    buffer.text = buffer.text.slice(cut).replace(/^\r?\n\r?\n/, "");
    const data = event.split(/\r?\n/).filter(line => line.startsWith("data:"))
      .map(line => line.slice(5).replace(/^ /, "")).join("\n");
    if (data) yield data;
  }
}

function applyDelta(message, delta) {
  if (delta.reasoning_content) message.reasoning = (message.reasoning || "") + delta.reasoning_content;
  if (delta.content) message.content += delta.content;
  for (const call of delta.tool_calls || []) {
    message.tool_calls = message.tool_calls || [];
    const index = call.index ?? message.tool_calls.length;
    const slot = message.tool_calls[index] ||
      (message.tool_calls[index] = {id: "", type: "function", function: {name: "", arguments: ""}});
    if (call.id) slot.id = call.id;
    if (call.function && call.function.name) slot.function.name += call.function.name;
    if (call.function && call.function.arguments) slot.function.arguments += call.function.arguments;
  }
}

async function send(text) {
  if (settings.tools.trim()) {
    try {
      if (!Array.isArray(JSON.parse(settings.tools))) throw new Error("not a JSON array");
    } catch (err) {
      setStatus("Tools: " + err.message);
      return;
    }
  }
  const conversation = current() || newConversation();
  if (!conversation.messages.length) conversation.title = text.replace(/\s+/g, " ").slice(0, 48);
  conversation.messages.push({role: "user", content: text});
  const message = {role: "assistant", content: ""};
  const body = requestBody(conversation);
  conversation.messages.push(message);
  conversation.updated = Date.now();
  conversations = [conversation, ...conversations.filter(c => c !== conversation)];
  saveConversations();
  showList();
  showUser({content: text});
  const view = new AssistantView();
  log.scrollTop = log.scrollHeight;

  controller = new AbortController();
  setState("streaming");
  setStatus("");
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify(body),
                                                     signal: controller.signal});
    if (!res.ok) {
      message.error = await errorMessage(res);
    } else {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const buffer = {text: ""};
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer.text += decoder.decode(value, {stream: true});
        const follow = nearBottom();
        for (const data of sseEvents(buffer)) {
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) {
            message.error = (message.content ? message.content + "\n\n" : "") + chunk.error.message;
            continue;
          }
          for (const choice of chunk.choices || []) {
            if (choice.index) continue; // the page asks for one choice
            applyDelta(message, choice.delta || {});
            if (choice.finish_reason) message.finish_reason = choice.finish_reason;
          }
        }
        view.show(message, false);
        if (follow) log.scrollTop = log.scrollHeight;
      }
    }
  } catch (err) {
    if (err.name === "AbortError") message.stopped = true;
    else message.error = String(err);
  } finally {
    controller = null;
    view.show(message, true);
    saveConversations();
    setState("idle");
  }
}

// ------------------------------------------------------------------------------------------ wiring

function bindSetting(id, key, onChange) {
  const input = $(id);
  input.value = settings[key];
  input.addEventListener("change", () => {
    settings[key] = input.value;
    store.save("settings", settings);
    if (onChange) onChange();
  });
}

bindSetting("temperature", "temperature");
bindSetting("max-tokens", "maxTokens");
bindSetting("system", "system");
bindSetting("tools", "tools");
bindSetting("api-key", "apiKey", loadModels);
bindSetting("model", "model");

$("form").addEventListener("submit", event => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", event => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("form").requestSubmit();
  }
});
// Stop: aborting the fetch closes the connection, and the server frees the slot at its next step.
$("stop").addEventListener("click", () => {
  if (controller) controller.abort();
});
$("new-chat").addEventListener("click", () => {
  if (controller) return;
  const empty = current();
  if (!empty || empty.messages.length) newConversation();
  showConversation();
  $("input").focus();
});

showConversation();
loadModels().then(() => setState("idle"));
