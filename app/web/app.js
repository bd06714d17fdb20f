// The service's own page, for a registry's clerks: check a new drawing against the
// registered brands, compare it with any of them laid over each other, then register it
// with a label; browse, filter, open, compare and delete what is registered.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere. Every text
// comes from messages.js in the clerk's language, which the service's own messages follow
// (the page sends it as Accept-Language). Data from the API is only ever written as text.

import { DEFAULT_LANGUAGE, LANGUAGES, MESSAGES } from "./messages.js";

const API_KEY_STORAGE = "image-search-api-key";
const LANGUAGE_STORAGE = "image-search-language";
const $ = (id) => document.getElementById(id);

const state = {
  language: DEFAULT_LANGUAGE,
  file: null,  // the drawing on screen
  previewUrls: [],
  matches: [],  // its check's results, for the question before registering
  checked: false,  // whether its check has answered: Registrar waits for it
  check: 0,  // counts drawings and checks: an answer for an older one is dropped
  controller: null,  // aborts the check in flight when a newer one starts
  page: 1,
  total: 0,
  filter: "",
  brand: null,  // the registered brand open in the brand dialog
};

// Language

function chosenLanguage() {
  const stored = localStorage.getItem(LANGUAGE_STORAGE);
  if (stored in LANGUAGES) return stored;
  // Spanish unless the browser prefers English before Spanish.
  for (const wanted of navigator.languages || [navigator.language]) {
    const primary = String(wanted).toLowerCase().split("-")[0];
    if (primary in LANGUAGES) return primary;
  }
  return DEFAULT_LANGUAGE;
}

// A template, or for a counted one its plural forms ({one, other}) chosen by `count`.
function t(key, values = {}) {
  let template = MESSAGES[state.language][key];
  if (typeof template === "object") {
    const form = new Intl.PluralRules(state.language).select(values.count);
    template = template[form] ?? template.other;
  }
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

function decimal(value, digits = 3) {
  return new Intl.NumberFormat(state.language, {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  }).format(value);
}

function percent(value) {
  return new Intl.NumberFormat(state.language, { style: "percent" }).format(value);
}

function translatePage() {
  document.documentElement.lang = state.language;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attribute of ["placeholder", "alt", "aria-label"]) {
    const data = `data-i18n-${attribute}`;
    for (const node of document.querySelectorAll(`[${data}]`)) {
      node.setAttribute(attribute, t(node.getAttribute(data)));
    }
  }
  $("threshold-value").textContent = decimal(Number($("threshold").value), 2);
}

// API

class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

// An answer for a drawing or a check that is no longer on screen: dropped unseen.
class Overtaken extends Error {}

// The page's name for each field the service may refuse, so that a clerk reads
// "Cuántas mostrar: ..." where the API says "top_k".
const FIELD_LABELS = {
  top_k: "top_k", min_similarity: "threshold", label: "register.label", file: "drop.label",
  mode: "mode", text: "words", q: "filter",
};

function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((problem) => {
      const field = (problem.loc || []).at(-1);
      const label = field in FIELD_LABELS ? t(FIELD_LABELS[field]) : field;
      return label ? `${label}: ${problem.msg}` : problem.msg;
    }).join("; ");
  }
  return t("error.status", { status });
}

function showKeyField() {
  $("key-setting").hidden = false;
  $("api-key").focus();
}

async function api(method, path, { body, write = false, as = "json", json = false, signal } = {}) {
  const headers = { "Accept-Language": state.language };
  if (json) headers["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(API_KEY_STORAGE);
  if (write && key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(path, { method, body, headers, signal });
  } catch {
    if (signal && signal.aborted) throw new Overtaken();
    throw new ApiError(t("error.unreachable"));
  }
  if (!response.ok) {
    const answer = await response.json().catch(() => null);
    let message = describe(response.status, answer);
    const retry = response.headers.get("Retry-After");
    if (response.status === 503 && retry) message += t("error.retry", { seconds: retry });
    if (response.status === 401 || response.status === 403) {
      message += t("error.key");
      showKeyField();
    }
    throw new ApiError(message, response.status);
  }
  return as === "blob" ? response.blob() : response.json();
}

function searchParams() {
  const params = new URLSearchParams({
    mode: document.querySelector('input[name="mode"]:checked').value,
    min_similarity: $("threshold").value,
    top_k: $("top-k").value || "10",
  });
  if ($("turns").checked) params.set("turns", "true");
  return params;
}

function upload() {
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  return form;
}

// Messages

function show(node, text, kind = "info") {
  node.textContent = text;
  node.className = `message ${kind}`;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
}

async function guarded(node, action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof Overtaken) return;
    show(node, error instanceof ApiError ? error.message : t("error.unexpected", { error }), "error");
    return error;
  }
}

// The page's own confirmation (a browser confirm box cannot be translated or ask for a
// word): resolves true when the clerk confirms, having typed `word` where one is asked.
// `picture`, when given, resolves to an image shown with the question (an overlay).
function ask(text, yes, word = null, picture = null) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = text;
  const image = $("confirm-image");
  image.hidden = picture === null;
  image.removeAttribute("src");
  if (picture) {
    picture.then((blob) => {
      const url = URL.createObjectURL(blob);
      state.previewUrls.push(url);
      image.src = url;
    }).catch(() => { image.hidden = true; });
  }
  $("confirm-yes").textContent = yes;
  $("confirm-word-field").hidden = word === null;
  $("confirm-word").value = "";
  $("confirm-yes").disabled = word !== null;
  $("confirm-word").oninput = () => {
    $("confirm-yes").disabled = $("confirm-word").value.trim().toUpperCase() !== word;
  };
  dialog.returnValue = "";
  dialog.showModal();
  (word === null ? $("confirm-no") : $("confirm-word")).focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

// Rendering

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function thumbnail(url, alt) {
  const image = element("img");
  Object.assign(image, { src: url, alt, loading: "lazy", decoding: "async" });
  return image;
}

const shownId = (item) => decodeURIComponent(item.id);
// Where a person reads an id: its first characters (ids are long hex names); the full id
// is one click away on the card.
const SHORT_ID_CHARS = 8;

function shortId(item) {
  const id = shownId(item);
  const dot = id.lastIndexOf(".");
  const stem = dot > 0 ? id.slice(0, dot) : id;
  return stem.length > SHORT_ID_CHARS + 2 ? `${stem.slice(0, SHORT_ID_CHARS)}…${id.slice(stem.length)}` : id;
}

// The short id, showing the full one when clicked.
function idElement(item) {
  const node = button(t("id", { id: shortId(item) }), t("id.full", { id: shownId(item) }), () => {
    node.textContent = t("id", { id: shownId(item) });
  }, "id link");
  node.title = shownId(item);
  return node;
}

function button(text, label, action, className) {
  const node = element("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", action);
  return node;
}

function turnInWords(turn) {
  return turn ? t(`turn.${turn}`) : "";
}

// What the verification stage says of a result, in words; `query` names what was
// searched for ("your drawing", or a registered brand).
function verdictInWords(result, query) {
  return t(result.verdict ? `verdict.${result.verdict}` : "verdict.none", { query });
}

const isConflict = (result) => Boolean(result.verdict) && result.verdict !== "different";

// One result of a search. `open` compares it with what it was found for, `query`.
function resultCard(result, rank, openLabel, open, query) {
  const card = element("li", `card result verdict-${result.verdict || "none"}`);
  card.append(thumbnail(result.url, `${result.name}, ${t("rank", { rank })}`));
  const meta = element("div", "meta");
  meta.append(element("span", "name", `${rank}. ${result.name}`));
  if (result.name !== shownId(result)) meta.append(idElement(result));
  meta.append(element("strong", "verdict", verdictInWords(result, query)));
  meta.append(element("span", "similarity", t("similarity", { value: decimal(result.similarity) })));
  const meter = element("meter");
  Object.assign(meter, { min: 0, max: 1, value: Math.max(0, result.similarity) });
  meter.setAttribute("aria-hidden", "true");
  meta.append(meter);
  const concept = decimal(result.concept_similarity);
  meta.append(element("small", "muted", result.shape_similarity === null
    ? t("scores.concept", { concept })
    : t("scores", { concept, shape: decimal(result.shape_similarity) })));
  if (result.overlap !== null && result.overlap !== undefined) {
    meta.append(element("small", "coverage", open.coverage(result)));
  }
  const turn = turnInWords(result.turn);
  if (turn) meta.append(element("small", "turn", turn));
  if (openLabel) meta.append(button(t("compare"), openLabel, () => open(result)));
  card.append(meta);
  return card;
}

function coverageOfUpload(scores) {
  return t("covers", { registered: percent(scores.registered_covered), query: percent(scores.query_covered) });
}

// Compare: two drawings side by side and laid over each other (the service's overlay).

function showComparison({ title, first, second, legend, paths, coverage }) {
  const dialog = $("compare-dialog");
  $("compare-title").textContent = title;
  for (const [side, picture] of [["first", first], ["second", second]]) {
    $(`compare-${side}`).src = picture.url;
    $(`compare-${side}`).alt = picture.caption;
    $(`compare-${side}-caption`).textContent = picture.caption;
  }
  $("legend-registered").textContent = legend.registered;
  $("legend-query").textContent = legend.query;
  $("compare-image").removeAttribute("src");
  $("compare-scores").textContent = "";
  show($("compare-message"), t("aligning"));
  dialog.showModal();
  return guarded($("compare-message"), async () => {
    const [scores, picture] = await Promise.all([paths.json(), paths.png()]);
    const url = URL.createObjectURL(picture);
    state.previewUrls.push(url);
    $("compare-image").src = url;
    const parts = [coverage(scores), t("overlay.overlap", { value: percent(scores.overlap) })];
    if (turnInWords(scores.turn)) parts.push(turnInWords(scores.turn));
    $("compare-scores").textContent = parts.join(" · ");
    show($("compare-message"), "");
  });
}

function turnsParameter() {
  return $("turns").checked ? "&turns=true" : "";
}

// The new drawing over a registered brand: POST /images/{id}/compare.
function compareUpload(result) {
  const path = `/images/${result.id}/compare?format=`;
  return showComparison({
    title: t("overlay.title", { name: result.name }),
    first: { url: state.previewUrls[0], caption: t("overlay.first") },
    second: { url: result.url, caption: result.name },
    legend: { registered: result.name, query: t("overlay.query") },
    paths: {
      json: () => api("POST", `${path}json${turnsParameter()}`, { body: upload() }),
      png: () => api("POST", `${path}png${turnsParameter()}`, { body: upload(), as: "blob" }),
    },
    coverage: coverageOfUpload,
  });
}
compareUpload.coverage = coverageOfUpload;

// Two registered brands: GET /images/{id}/compare/{other}, the similar one as registered.
function comparePair(brand) {
  const open = (result) => {
    const path = `/images/${result.id}/compare/${brand.id}?format=`;
    return showComparison({
      title: t("overlay.pair.title", { first: result.name, second: brand.name }),
      first: { url: result.url, caption: result.name },
      second: { url: brand.full_url, caption: brand.name },
      legend: { registered: result.name, query: t("overlay.aligned", { name: brand.name }) },
      paths: {
        json: () => api("GET", `${path}json${turnsParameter()}`),
        png: () => api("GET", `${path}png${turnsParameter()}`, { as: "blob" }),
      },
      coverage: (scores) => pairCoverage(scores, result.name, brand.name),
    });
  };
  open.coverage = (result) => pairCoverage(result, result.name, brand.name);
  return open;
}

function pairCoverage(scores, first, second) {
  return t("covers.pair", {
    first, second, registered: percent(scores.registered_covered), query: percent(scores.query_covered),
  });
}

function showResults(title, results, comparable) {
  $("results-title").textContent = title;
  $("results-title").hidden = false;
  $("results").replaceChildren(...results.map((result, index) => resultCard(
    result, index + 1, comparable && t("compare.label", { name: result.name }), compareUpload,
    t("overlay.first").toLowerCase())));
}

// What the check of a drawing found, in one sentence: its conflicts, or none.
function checkSummary(results) {
  const conflicts = results.filter(isConflict).length;
  if (conflicts) return t("found.conflicts", { count: conflicts });
  if (!results.length) return t("found.none");
  if (results.some((result) => result.verdict)) return t("found.clear", { count: results.length });
  return t("found", { count: results.length });
}

// Check: a new drawing, its closest registered brands

// Nothing of the previous drawing stays: its picture, its check, its results, its label.
function forgetDrawing() {
  state.check += 1;
  if (state.controller) state.controller.abort();
  state.file = null;
  state.matches = [];
  state.checked = false;
  state.previewUrls.forEach((url) => URL.revokeObjectURL(url));
  state.previewUrls = [];
  $("query-preview").removeAttribute("src");
  $("embedder-preview").removeAttribute("src");
  $("previews").hidden = true;
  $("results-title").hidden = true;
  $("results").replaceChildren();
  $("label").value = "";
  $("search-button").disabled = true;
  $("register-button").disabled = true;
  show($("search-message"), "");
  show($("register-message"), "");
}

function pick(file) {
  if (!file) return;
  forgetDrawing();
  $("file").value = "";  // so that choosing the same file again is a new choice
  if (file.type && !file.type.startsWith("image/")) {
    show($("search-message"), t("not_image", { name: file.name }), "error");
    return;
  }
  state.file = file;
  state.previewUrls = [URL.createObjectURL(file)];
  $("query-preview").src = state.previewUrls[0];
  $("previews").hidden = false;
  $("search-button").disabled = false;
  guarded($("search-message"), async () => {
    const preview = await api("POST", "/preprocess", { body: upload(), as: "blob" });
    if (state.file !== file) return;  // another drawing is on screen now
    const url = URL.createObjectURL(preview);
    state.previewUrls.push(url);
    $("embedder-preview").src = url;
  });
  search();
}

// The service's answers that refuse the drawing itself (damaged, too large, not an image).
const DRAWING_REFUSED = [400, 413, 415];

// The check of the drawing on screen; Registrar waits for its answer. A newer check
// aborts this one, and an answer for an older one is dropped.
function search() {
  if (!state.file) return;
  const file = state.file;
  const check = ++state.check;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  state.checked = false;
  $("register-button").disabled = true;
  const message = $("search-message");
  show(message, t("searching"));
  return guarded(message, async () => {
    let answer;
    try {
      answer = await api("POST", `/search-similar-images/?${searchParams()}`,
        { body: upload(), signal: controller.signal });
    } catch (error) {
      if (check === state.check) {
        state.matches = [];
        $("results-title").hidden = true;
        $("results").replaceChildren();
        // A drawing the service refuses (damaged, too large, not an image) cannot be
        // registered either; a busy service or a wrong setting leaves it to check again.
        if (error instanceof ApiError && DRAWING_REFUSED.includes(error.status)) {
          state.file = null;
          $("search-button").disabled = true;
        }
      }
      throw error;
    }
    if (check !== state.check || state.file !== file) return;
    state.matches = answer.results;
    state.checked = true;
    $("register-button").disabled = false;
    showResults(t("results"), answer.results, true);
    show(message, checkSummary(answer.results));
  });
}

function searchText() {
  const text = $("text-query").value.trim();
  const message = $("search-message");
  if (!text) {
    show(message, t("words.empty"), "error");
    return;
  }
  show(message, t("searching"));
  return guarded(message, async () => {
    const body = JSON.stringify({ text, top_k: Number($("top-k").value) || 10 });
    const answer = await api("POST", "/search-by-text", { body, json: true });
    showResults(t("results.words", { text }), answer.results, false);
    let summary = answer.results.length
      ? t("found.words", { count: answer.results.length }) : t("found.words.none");
    if (answer.text_truncated) summary += t("found.truncated");
    show(message, summary);
  });
}

// Register, after the clerk has seen the close matches.

function spokenName(item) {
  return item.name === shownId(item) ? shortId(item) : `${item.name} (${t("id", { id: shortId(item) })})`;
}

// Before registering a drawing whose check found conflicts: the first one, its verdict in
// words and the two laid over each other; true when the clerk registers it anyway.
function confirmConflicts(conflicts) {
  const first = conflicts[0];
  let text = t(`register.confirm.${first.verdict}`, { name: spokenName(first) });
  if (conflicts.length > 1) text += t("register.confirm.more", { count: conflicts.length - 1 });
  const overlay = api("POST", `/images/${first.id}/compare?format=png${turnsParameter()}`,
    { body: upload(), as: "blob" });
  return ask(`${text} ${t("register.confirm.question")}`, t("register.confirm.yes"), null, overlay);
}

async function register() {
  const message = $("register-message");
  if (!state.file || !state.checked) {
    show(message, t("register.first"), "error");
    return;
  }
  const check = state.check;
  const conflicts = state.matches.filter(isConflict);
  if (conflicts.length && !(await confirmConflicts(conflicts))) return;
  if (check !== state.check) return;  // another drawing or check while the question was open
  show(message, t("registering"));
  const body = upload();
  const label = $("label").value.trim();
  if (label) body.append("label", label);
  return guarded(message, async () => {
    $("register-button").disabled = true;
    const answer = await api("POST", `/images/?${searchParams()}`, { body, write: true })
      .finally(() => { $("register-button").disabled = !state.checked; });
    if (check === state.check) forgetDrawing();
    show(message, t("registered", { name: spokenName(answer.image) }), "success");
    await Promise.all([loadPage(1), loadHealth()]);
  });
}

// The registry

function imageCard(item) {
  const card = element("li", "card");
  card.append(thumbnail(item.full_url, item.name));
  const meta = element("div", "meta");
  meta.append(element("span", "name", item.name));
  if (item.label && item.original_filename) meta.append(element("small", "muted", t("file", { name: item.original_filename })));
  if (item.name !== shownId(item)) meta.append(idElement(item));
  meta.append(element("small", "muted", new Date(item.created_at).toLocaleString(state.language)));
  meta.append(button(t("open"), t("open.label", { name: item.name }), () => openBrand(item)));
  card.append(meta);
  return card;
}

function loadPage(page) {
  const message = $("registry-message");
  return guarded(message, async () => {
    const params = new URLSearchParams({ page, page_size: $("page-size").value });
    if (state.filter) params.set("q", state.filter);
    const answer = await api("GET", `/images/?${params}`);
    state.page = answer.page;  // the last page when the one asked for is gone
    state.total = answer.total;
    $("images").replaceChildren(...answer.images.map(imageCard));
    const values = { page: answer.page, pages: answer.total_pages, count: answer.total, filter: state.filter };
    if (answer.total) $("page-info").textContent = t(state.filter ? "page.filtered" : "page", values);
    else $("page-info").textContent = t(state.filter ? "page.none" : "page.empty", values);
    $("previous").disabled = answer.page <= 1;
    $("next").disabled = answer.page >= answer.total_pages;
    if (message.classList.contains("error")) show(message, "");
  });
}

function openBrand(item) {
  state.brand = item;
  $("brand-title").textContent = item.name;
  $("brand-image").src = item.full_url;
  $("brand-image").alt = item.name;
  const facts = [t("id", { id: shownId(item) }), new Date(item.created_at).toLocaleString(state.language)];
  if (item.original_filename) facts.unshift(t("file", { name: item.original_filename }));
  $("brand-facts").textContent = facts.join(" · ");
  $("brand-label").value = item.label || "";
  $("brand-similar-title").hidden = true;
  $("brand-similar-results").replaceChildren();
  show($("brand-message"), "");
  $("brand-dialog").showModal();
}

function saveLabel() {
  const brand = state.brand;
  return guarded($("brand-message"), async () => {
    const body = JSON.stringify({ label: $("brand-label").value.trim() || null });
    const item = await api("PATCH", `/images/${brand.id}`, { body, json: true, write: true });
    state.brand = item;
    $("brand-title").textContent = item.name;
    show($("brand-message"), t("brand.saved"), "success");
    await loadPage(state.page);
  });
}

function similarToBrand() {
  const brand = state.brand;
  show($("brand-message"), t("searching"));
  return guarded($("brand-message"), async () => {
    const answer = await api("GET", `/images/${brand.id}/similar?${searchParams()}`);
    $("brand-similar-title").textContent = t("brand.similar.title", { name: brand.name });
    $("brand-similar-title").hidden = false;
    const open = comparePair(brand);
    $("brand-similar-results").replaceChildren(...answer.results.map((result, index) => resultCard(
      result, index + 1, t("compare.pair.label", { name: result.name, other: brand.name }), open,
      brand.name)));
    show($("brand-message"), answer.results.length
      ? checkSummary(answer.results) : t("brand.similar.none"));
  });
}

async function deleteBrand() {
  const brand = state.brand;
  if (!(await ask(t("confirm.delete", { name: spokenName(brand) }), t("confirm.delete.yes")))) return;
  return guarded($("brand-message"), async () => {
    const answer = await api("DELETE", `/images/${brand.id}`, { write: true });
    $("brand-dialog").close();
    await Promise.all([loadPage(state.page), loadHealth()]);
    show($("registry-message"), answer.message, "success");
  });
}

async function deleteAll() {
  const word = t("confirm.word");
  const text = t("confirm.delete_all", { count: state.total, word });
  if (!(await ask(text, t("confirm.delete_all.yes"), word))) return;
  const message = $("registry-message");
  return guarded(message, async () => {
    const answer = await api("DELETE", "/images/?confirm=true", { write: true });
    await Promise.all([loadPage(1), loadHealth()]);
    show(message, answer.message, "success");
  });
}

// The service: its state in the header, its defaults in the controls

// The controls start at the service's own defaults (SIMILARITY_THRESHOLD, TOP_K capped at
// MAX_TOP_K, SEARCH_MODE), once: afterwards they are the clerk's.
let defaultsApplied = false;

function applyDefaults(defaults) {
  if (defaultsApplied) return;
  defaultsApplied = true;
  $("threshold").value = String(defaults.min_similarity);
  $("threshold-value").textContent = decimal(defaults.min_similarity, 2);
  $("top-k").value = String(defaults.top_k);
  $("top-k").max = String(defaults.max_top_k);
  const mode = document.querySelector(`input[name="mode"][value="${defaults.mode}"]`);
  if (mode) mode.checked = true;
}

let lastHealth = null;

function showHealth() {
  const health = lastHealth;
  if (!health) return;
  const progress = health.indexing;
  // The service says why IMAGES_DIR cannot be written (moved, unmounted), in the page's language.
  const status = health.problem || (progress.running
    ? t("health.indexing", { done: progress.done, total: progress.total }) : t("health.ready"));
  $("health").textContent = `${t("health.count", { count: health.indexed_images })} · ${status}`;
  $("details-model").textContent = health.model;
  $("details-inference").textContent = health.inference;
  $("details-dimension").textContent = String(health.embedding_dimension);
  $("details-words").textContent = t(health.text_search ? "yes" : "no");
  $("text-form").hidden = !health.text_search;
}

async function loadHealth() {
  try {
    lastHealth = await api("GET", "/health");
    applyDefaults(lastHealth.search_defaults);
    showHealth();
  } catch (error) {
    $("health").textContent = error.message;
  }
}

function setLanguage(language) {
  state.language = language;
  localStorage.setItem(LANGUAGE_STORAGE, language);
  translatePage();
  showHealth();
  loadPage(state.page);
  if (state.file) search();
}

// Wiring

function submitted(id, action) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    action();
  });
}

function start() {
  state.language = chosenLanguage();
  const languages = $("language");
  languages.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => {
    const option = element("option", null, name);
    option.value = code;
    option.lang = code;
    return option;
  }));
  languages.value = state.language;
  languages.addEventListener("change", () => setLanguage(languages.value));
  translatePage();

  const key = $("api-key");
  key.value = sessionStorage.getItem(API_KEY_STORAGE) || "";
  // Out of the way until a write is refused for want of it (or one was typed already).
  $("key-setting").hidden = !key.value;
  key.addEventListener("input", () => sessionStorage.setItem(API_KEY_STORAGE, key.value.trim()));

  $("file").addEventListener("change", (event) => pick(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(event.dataTransfer.files[0]);
  });

  submitted("controls", search);
  $("threshold").addEventListener("input", () => {
    $("threshold-value").textContent = decimal(Number($("threshold").value), 2);
  });
  for (const control of document.querySelectorAll('input[name="mode"], #turns, #threshold, #top-k')) {
    control.addEventListener("change", search);
  }
  submitted("text-form", searchText);
  submitted("register-form", register);

  submitted("filter-form", () => {
    state.filter = $("filter").value.trim();
    loadPage(1);
  });
  $("page-size").addEventListener("change", () => loadPage(1));
  $("refresh").addEventListener("click", () => Promise.all([loadPage(state.page), loadHealth()]));
  $("previous").addEventListener("click", () => loadPage(state.page - 1));
  $("next").addEventListener("click", () => loadPage(state.page + 1));
  $("delete-all").addEventListener("click", deleteAll);

  submitted("brand-label-form", saveLabel);
  $("brand-similar").addEventListener("click", similarToBrand);
  $("brand-delete").addEventListener("click", deleteBrand);
  $("brand-close").addEventListener("click", () => $("brand-dialog").close());
  $("compare-close").addEventListener("click", () => $("compare-dialog").close());

  loadHealth();
  loadPage(1);
}

start();
