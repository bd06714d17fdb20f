// The service's own page: search by drawing or by words, add to the collection, browse
// and delete.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere. Every API
// answer that is not a success is shown as a message; data from the API is only ever
// written as text (file names are the uploaders').
"use strict";

const API_KEY_STORAGE = "image-search-api-key";
const $ = (id) => document.getElementById(id);

const state = { file: null, previewUrls: [], page: 1 };

// API

class ApiError extends Error {}

function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((problem) => `${(problem.loc || []).slice(1).join(".")}: ${problem.msg}`).join("; ");
  }
  return `The service answered ${status}.`;
}

async function api(method, path, { body, write = false, as = "json", json = false } = {}) {
  const headers = json ? { "Content-Type": "application/json" } : {};
  const key = sessionStorage.getItem(API_KEY_STORAGE);
  if (write && key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(path, { method, body, headers });
  } catch {
    throw new ApiError("Cannot reach the service. Is it running?");
  }
  if (!response.ok) {
    const answer = await response.json().catch(() => null);
    let message = describe(response.status, answer);
    const retry = response.headers.get("Retry-After");
    if (response.status === 503 && retry) message += ` (retry in ${retry} s)`;
    if (response.status === 401 || response.status === 403) {
      message += " Type the API key at the top of the page, if you have one.";
    }
    throw new ApiError(message);
  }
  return as === "blob" ? response.blob() : response.json();
}

function searchParams() {
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const params = new URLSearchParams({
    mode,
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

function show(element, text, kind = "info") {
  element.textContent = text;
  element.className = `message ${kind}`;
  element.setAttribute("role", kind === "error" ? "alert" : "status");
}

async function guarded(element, action) {
  try {
    await action();
  } catch (error) {
    show(element, error instanceof ApiError ? error.message : `Something went wrong: ${error}`, "error");
  }
}

// Rendering

const score = (value) => value.toFixed(3);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function thumbnail(url, label) {
  const image = element("img");
  image.src = url;
  image.alt = label;
  image.loading = "lazy";
  image.decoding = "async";
  return image;
}

function nameOf(item) {
  return item.original_filename || decodeURIComponent(item.id);
}

function resultCard(result, rank, comparable) {
  const card = element("li", "card result");
  const name = nameOf(result);
  card.append(thumbnail(result.url, `${name}, ranked ${rank}`));
  const meta = element("div", "meta");
  meta.append(element("span", "name", `${rank}. ${name}`));
  const similarity = element("span", "similarity", `similarity ${score(result.similarity)}`);
  meta.append(similarity);
  const meter = element("meter");
  Object.assign(meter, { min: 0, max: 1, value: Math.max(0, result.similarity) });
  meter.setAttribute("aria-hidden", "true");
  meta.append(meter);
  let parts = `concept ${score(result.concept_similarity)}`;
  if (result.shape_similarity !== null) parts += ` · shape ${score(result.shape_similarity)}`;
  if (result.turn && result.turn !== "upright") parts += ` · ${result.turn}`;
  meta.append(element("small", "muted", parts));
  if (result.overlap !== null && result.overlap !== undefined) {
    meta.append(element("small", "coverage", coverage(result)));
  }
  if (comparable) {
    const open = element("button", "compare", "Compare");
    open.type = "button";
    open.setAttribute("aria-label", `Compare your drawing with ${name}`);
    open.addEventListener("click", () => compare(result, name));
    meta.append(open);
  }
  card.append(meta);
  return card;
}

function coverage(result) {
  return `covers ${score(result.registered_covered)} of it · it covers ` +
    `${score(result.query_covered)} of yours`;
}

function showResults(title, results, comparable = false) {
  $("results-title").textContent = title;
  $("results-title").hidden = false;
  $("results").replaceChildren(
    ...results.map((result, index) => resultCard(result, index + 1, comparable)));
}

// The drawing laid over a result: POST /images/{id}/compare, as scores and as a PNG.
function compare(result, name) {
  const dialog = $("compare-dialog");
  $("compare-title").textContent = `Your drawing over ${name}`;
  $("compare-image").removeAttribute("src");
  $("compare-scores").textContent = "";
  show($("compare-message"), "Aligning…");
  dialog.showModal();
  const turns = $("turns").checked ? "&turns=true" : "";
  const path = `/images/${encodeURIComponent(result.id)}/compare?format=`;
  return guarded($("compare-message"), async () => {
    const [scores, picture] = await Promise.all([
      api("POST", `${path}json${turns}`, { body: upload() }),
      api("POST", `${path}png${turns}`, { body: upload(), as: "blob" }),
    ]);
    const url = URL.createObjectURL(picture);
    state.previewUrls.push(url);
    $("compare-image").src = url;
    $("compare-scores").textContent = `${coverage(scores)} · overlap ${score(scores.overlap)}` +
      (scores.turn !== "upright" ? ` · ${scores.turn}` : "");
    show($("compare-message"), "");
  });
}

// Search and add

function pick(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    show($("search-message"), `${file.name} is not an image.`, "error");
    return;
  }
  state.file = file;
  state.previewUrls.forEach((url) => URL.revokeObjectURL(url));
  state.previewUrls = [URL.createObjectURL(file)];
  $("query-preview").src = state.previewUrls[0];
  $("embedder-preview").removeAttribute("src");
  $("previews").hidden = false;
  $("search-button").disabled = false;
  $("add-button").disabled = false;
  guarded($("search-message"), async () => {
    const preview = await api("POST", "/preprocess", { body: upload(), as: "blob" });
    const url = URL.createObjectURL(preview);
    state.previewUrls.push(url);
    $("embedder-preview").src = url;
  });
  search();
}

function search() {
  if (!state.file) return;
  const message = $("search-message");
  show(message, "Searching…");
  return guarded(message, async () => {
    const answer = await api("POST", `/search-similar-images/?${searchParams()}`, { body: upload() });
    showResults("Results", answer.results, true);
    show(message, answer.results.length
      ? `${answer.results.length} similar images, best first.`
      : "No image of the collection is above the threshold.");
  });
}

function searchText() {
  const text = $("text-query").value.trim();
  const message = $("search-message");
  if (!text) {
    show(message, "Type what the drawing shows, for example: a circle crossed by a vertical bar.", "error");
    return;
  }
  show(message, "Searching…");
  return guarded(message, async () => {
    const body = JSON.stringify({ text, top_k: Number($("top-k").value) || 10 });
    const answer = await api("POST", "/search-by-text", { body, json: true });
    showResults(`Results for “${text}”`, answer.results);
    let summary = answer.results.length
      ? `${answer.results.length} images, nearest the words first.`
      : "The collection is empty.";
    if (answer.text_truncated) summary += " The text was long: only its first 77 tokens were read.";
    show(message, summary);
  });
}

function add() {
  if (!state.file) return;
  const message = $("search-message");
  show(message, "Adding…");
  return guarded(message, async () => {
    const answer = await api("POST", `/images/?${searchParams()}`, { body: upload(), write: true });
    const similar = answer.similar;
    showResults("Already in the collection and similar to it", similar);
    const added = `Added ${state.file.name} as ${answer.image.id}.`;
    if (similar.length) {
      const best = similar[0];
      show(message, `${added} Check before registering: ${similar.length} images resemble it; `
        + `the closest is ${nameOf(best)} (${score(best.similarity)}).`, "warning");
    } else {
      show(message, `${added} No image of the collection resembles it above the threshold.`, "success");
    }
    await Promise.all([loadPage(1), loadHealth()]);
  });
}

// The collection

function imageCard(item) {
  const card = element("li", "card");
  const name = nameOf(item);
  card.append(thumbnail(item.full_url, name));
  const meta = element("div", "meta");
  meta.append(element("span", "name", name));
  meta.append(element("small", "muted", new Date(item.created_at).toLocaleString()));
  const remove = element("button", "danger", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${name}`);
  remove.addEventListener("click", () => removeImage(item.id, name));
  meta.append(remove);
  card.append(meta);
  return card;
}

function loadPage(page) {
  const message = $("collection-message");
  return guarded(message, async () => {
    const params = new URLSearchParams({ page, page_size: $("page-size").value });
    const answer = await api("GET", `/images/?${params}`);
    state.page = answer.page;  // the last page when the one asked for is gone
    $("images").replaceChildren(...answer.images.map(imageCard));
    $("page-info").textContent = answer.total
      ? `Page ${answer.page} of ${answer.total_pages} · ${answer.total} images`
      : "No images yet";
    $("previous").disabled = answer.page <= 1;
    $("next").disabled = answer.page >= answer.total_pages;
    if (message.classList.contains("error")) show(message, "");
  });
}

function removeImage(id, name) {
  if (!confirm(`Delete ${name} from the collection? Its file is removed.`)) return;
  const message = $("collection-message");
  return guarded(message, async () => {
    const answer = await api("DELETE", `/images/${encodeURIComponent(id)}`, { write: true });
    await Promise.all([loadPage(state.page), loadHealth()]);
    show(message, answer.message, "success");
  });
}

function removeAll() {
  if (!confirm("Delete every image of the collection? Their files are removed.")) return;
  const message = $("collection-message");
  return guarded(message, async () => {
    const answer = await api("DELETE", "/images/?confirm=true", { write: true });
    await Promise.all([loadPage(1), loadHealth()]);
    show(message, answer.message, "success");
  });
}

// The ranking controls start at the service's own defaults (SIMILARITY_THRESHOLD,
// TOP_K capped at MAX_TOP_K, SEARCH_MODE), once: afterwards they are the clerk's.
let defaultsApplied = false;

function applyDefaults(defaults) {
  if (defaultsApplied) return;
  defaultsApplied = true;
  $("threshold").value = String(defaults.min_similarity);
  $("threshold-value").textContent = Number(defaults.min_similarity).toFixed(2);
  $("top-k").value = String(defaults.top_k);
  $("top-k").max = String(defaults.max_top_k);
  const mode = document.querySelector(`input[name="mode"][value="${defaults.mode}"]`);
  if (mode) mode.checked = true;
}

async function loadHealth() {
  try {
    const health = await api("GET", "/health");
    applyDefaults(health.search_defaults);
    const indexing = health.indexing.running ? ` · indexing ${health.indexing.done}/${health.indexing.total}` : "";
    $("health").textContent = `${health.indexed_images} images · ${health.model} (${health.inference})${indexing}`;
    $("text-form").hidden = !health.text_search;
  } catch (error) {
    $("health").textContent = error.message;
  }
}

// Wiring

function start() {
  const key = $("api-key");
  key.value = sessionStorage.getItem(API_KEY_STORAGE) || "";
  key.addEventListener("input", () => sessionStorage.setItem(API_KEY_STORAGE, key.value.trim()));

  $("file").addEventListener("change", (event) => pick(event.target.files[0]));
  $("compare-close").addEventListener("click", () => $("compare-dialog").close());
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

  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("threshold").addEventListener("input", () => {
    $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  });
  for (const control of document.querySelectorAll('input[name="mode"], #turns, #threshold, #top-k')) {
    control.addEventListener("change", search);
  }
  $("add-button").addEventListener("click", add);
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchText();
  });

  $("page-size").addEventListener("change", () => loadPage(1));
  $("refresh").addEventListener("click", () => Promise.all([loadPage(state.page), loadHealth()]));
  $("previous").addEventListener("click", () => loadPage(state.page - 1));
  $("next").addEventListener("click", () => loadPage(state.page + 1));
  $("delete-all").addEventListener("click", removeAll);

  loadHealth();
  loadPage(1);
}

start();
