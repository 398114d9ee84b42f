// async-reports in a browser: submit a report, watch it over the WebSocket, download the PDF.
// A plain ES module: no framework, no build. The contract is DESIGN.md's (HTTP and push).

const SETTINGS_KEY = "async-reports:settings";
const FINAL = new Set(["COMPLETED", "FAILED"]);
const PING_INTERVAL_MS = 5 * 60 * 1000; // API Gateway closes a WebSocket idle for 10 minutes
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 30 * 1000;
const STEP_OF_STATUS = { QUEUED: "waiting in the queue", RUNNING: "starting", COMPLETED: "done", FAILED: "failed" };

const element = (id) => document.getElementById(id);

// -- what the page shows ------------------------------------------------------------------------

const view = {
  showError(title, detail = "") {
    const box = element("error");
    const heading = document.createElement("strong");
    heading.textContent = title;
    const text = document.createElement("span");
    text.className = "detail";
    text.dataset.testid = "error-detail";
    text.textContent = detail;
    box.replaceChildren(heading, document.createTextNode(detail ? ": " : ""), text);
    box.hidden = false;
  },

  clearError() {
    const box = element("error");
    box.replaceChildren();
    box.hidden = true;
  },

  /** An answer other than the one expected: its problem+json (RFC 9457), or what there is of it. */
  showProblem(response, body, doing) {
    if (body && typeof body === "object") {
      const status = body.status ?? response.status;
      const title = body.title ?? (response.statusText || "Error");
      const detail = body.detail ?? body.message ?? "";
      view.showError(`${doing}: ${title} (${status})`, String(detail));
    } else {
      const text = typeof body === "string" ? body.trim().slice(0, 300) : "";
      view.showError(`${doing}: HTTP ${response.status} ${response.statusText}`.trim(), text);
    }
  },

  startReport(report) {
    element("report-id").textContent = report.id;
    element("report-what").textContent = `${report.reportType} for ${report.reportDate}`;
    element("history").replaceChildren();
    element("failure").hidden = true;
    element("failure").textContent = "";
    const link = element("download");
    link.hidden = true;
    link.removeAttribute("href");
    element("report").hidden = false;
  },

  render(report) {
    const status = String(report.status);
    const percent = Math.max(0, Math.min(100, Number(report.progress?.percent ?? (status === "COMPLETED" ? 100 : 0))));
    const step = FINAL.has(status) ? STEP_OF_STATUS[status] : report.progress?.step ?? STEP_OF_STATUS[status] ?? "";
    element("status").textContent = status;
    element("step").textContent = step;
    const bar = element("progress");
    bar.value = percent;
    bar.textContent = `${percent}%`;
    element("percent").textContent = `${percent}%`;
    const history = element("history");
    const entry = `${status} · ${step} · ${percent}%`;
    if (history.lastElementChild?.textContent !== entry) {
      const item = document.createElement("li");
      item.textContent = entry;
      history.append(item);
    }
    if (status === "COMPLETED" && report.pdfUri) {
      const link = element("download");
      link.href = report.pdfUri;
      link.download = `${String(report.reportType).toLowerCase().replaceAll("_", "-")}-${report.reportDate}.pdf`;
      link.hidden = false;
    }
    if (status === "FAILED") {
      const failure = element("failure");
      const code = report.error?.code ?? "FAILED";
      failure.textContent = `${code}: ${report.error?.message ?? "the report failed"}`;
      failure.hidden = false;
    }
  },

  connection(text) {
    element("connection").textContent = text;
  },
};

// -- talking to the API ---------------------------------------------------------------------------

/** The body as JSON when it is JSON, else as text. */
async function readBody(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

function networkError(url, error) {
  return (
    `${url} could not be reached (${error.message}). Check the API URL and your connection; ` +
    "a page served from another origin also needs the API to allow it (CorsAllowOrigin)."
  );
}

/** ws://host:port of a WebSocket link, without its watch token. */
function where(href) {
  try {
    const url = new URL(href);
    return `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
  } catch {
    return "the WebSocket API";
  }
}

/**
 * Follows one report: shows each state once, in version order; holds a WebSocket open (with a ping
 * every 5 minutes) until the report is final; after a close, asks the API for the current state and
 * a fresh link, and connects again with exponential backoff and full jitter.
 */
class ReportWatcher {
  constructor({ apiUrl, apiKey }) {
    this.apiUrl = apiUrl;
    this.apiKey = apiKey;
    this.report = null;
    this.version = 0;
    this.socket = null;
    this.pingTimer = null;
    this.retryTimer = null;
    this.attempt = 0;
    this.stopped = false;
  }

  start(report) {
    view.startReport(report);
    this.report = report;
    this.show(report);
    if (!this.stopped) this.connect(report._links?.websocket?.href);
  }

  /** Stops watching: a newer submission replaces this one. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "done");
  }

  show(report) {
    if (!report || report.id !== this.report.id) return;
    const version = Number(report.version);
    if (Number.isFinite(version)) {
      if (version <= this.version) return; // a repeat, or older than what is shown
      this.version = version;
    }
    this.report = report;
    view.render(report);
    if (FINAL.has(report.status)) {
      this.stop();
      view.connection("");
      if (report.status === "COMPLETED" && !report.pdfUri) this.fetchReport().then((fresh) => fresh && view.render(fresh));
    }
  }

  connect(href) {
    if (!href) {
      view.showError("No live updates", "the API's answer has no _links.websocket.href to watch the report with");
      return;
    }
    let socket;
    try {
      socket = new WebSocket(href);
    } catch (error) {
      view.showError("Live updates unavailable", `${where(href)}: ${error.message}`);
      return;
    }
    this.socket = socket;
    view.connection(this.attempt ? "reconnecting…" : "connecting…");
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      if (this.attempt) view.clearError(); // the interruption it reported is over
      this.attempt = 0;
      view.connection("live");
      this.pingTimer = setInterval(() => this.send(socket, { action: "ping" }), PING_INTERVAL_MS);
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.receive(event.data);
    });
    socket.addEventListener("error", () => {
      // The browser says nothing more about why; the close event that follows reconnects.
      if (socket === this.socket && !this.stopped) {
        view.showError("Live updates interrupted", `the WebSocket connection to ${where(href)} failed`);
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      clearInterval(this.pingTimer);
      this.socket = null;
      if (!this.stopped) this.reconnectLater(`connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
    });
  }

  send(socket, message) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      view.showError("Unexpected message", `the WebSocket sent something that is not JSON: ${String(data).slice(0, 200)}`);
      return;
    }
    if (message?.type === "report.updated") {
      this.show(message.report);
    } else if (message?.type === "error" || (message?.message && !message.type)) {
      const status = message.status ? ` (${message.status})` : "";
      view.showError(`Live updates: the server refused${status}`, String(message.detail ?? message.message));
    }
    // {"type": "pong"} and message types this page does not know are nothing to show.
  }

  reconnectLater(reason) {
    this.attempt += 1;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (this.attempt - 1));
    const delay = Math.round(Math.random() * ceiling); // full jitter: watchers of one outage spread out
    view.connection(`${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.resume(), delay);
  }

  /** The current state and a fresh link (its watch token may have expired), then a new socket. */
  async resume() {
    if (this.stopped) return;
    const report = await this.fetchReport();
    if (this.stopped) return;
    if (report === undefined) return; // the API said no for good; fetchReport showed why
    if (report === null) {
      this.reconnectLater("the API did not answer");
      return;
    }
    this.show(report);
    if (!this.stopped) this.connect(report._links?.websocket?.href);
  }

  /** GET the report: the report, null for a failure worth retrying, undefined for one that is not. */
  async fetchReport() {
    const url = `${this.apiUrl}/api/v1/report/${encodeURIComponent(this.report.id)}`;
    let response;
    let body;
    try {
      response = await fetch(url, { headers: { "x-api-key": this.apiKey }, cache: "no-store" });
      body = await readBody(response);
    } catch (error) {
      view.showError("Network error", networkError(url, error));
      return null;
    }
    if (response.status === 200 && body && typeof body === "object") return body;
    view.showProblem(response, body, "Checking the report");
    if (response.status === 429 || response.status >= 500) return null;
    this.stop();
    view.connection("stopped");
    return undefined;
  }
}

// -- the form -------------------------------------------------------------------------------------

function savedSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {};
  }
}

/** config.json next to the page names its API (and, locally, a key); what it leaves out is what was last typed. */
async function loadSettings() {
  const saved = savedSettings();
  let config = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch (error) {
    if (error instanceof SyntaxError) view.showError("config.json is not valid JSON", error.message);
    // Otherwise there is no config.json (or the page is a file): the fields start as last typed.
  }
  const apiUrl = element("api-url");
  const apiKey = element("api-key");
  apiUrl.value = config?.apiUrl || saved.apiUrl || apiUrl.value;
  apiKey.value = config?.apiKey || saved.apiKey || apiKey.value;
}

let watcher = null;

async function submit(event) {
  event.preventDefault();
  const apiUrl = element("api-url").value.trim().replace(/\/+$/, "");
  const apiKey = element("api-key").value.trim();
  const reportType = element("report-type").value.trim();
  const reportDate = element("report-date").value.trim();
  localStorage.setItem(SETTINGS_KEY, JSON.stringify({ apiUrl, apiKey }));
  view.clearError();
  watcher?.stop();
  watcher = null;
  if (!apiUrl) {
    view.showError("API URL missing", "enter the API's stage URL, such as https://abc123.execute-api.eu-west-1.amazonaws.com/v1");
    return;
  }
  if (!apiKey) {
    view.showError("API key missing", "enter your API key; it is sent as the x-api-key header");
    return;
  }
  const url = `${apiUrl}/api/v1/report`;
  const button = element("submit");
  button.disabled = true;
  let response;
  let body;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": apiKey },
      body: JSON.stringify({ reportType, reportDate }),
    });
    body = await readBody(response);
  } catch (error) {
    view.showError("Network error", networkError(url, error));
    return;
  } finally {
    button.disabled = false;
  }
  if (response.status !== 201 || !body || typeof body !== "object") {
    view.showProblem(response, body, "The report was not accepted");
    return;
  }
  watcher = new ReportWatcher({ apiUrl, apiKey });
  watcher.start(body);
}

element("report-form").addEventListener("submit", submit);
loadSettings().finally(() => {
  document.body.dataset.ready = "true"; // the fields hold their settings: the tests wait for this
});
