// The clinic's upload page (docs/uploads.md): files, folders and zips go to one upload session over
// tus (tus-js-client, served from /static/vendor/), a few at a time; the page redraws at most once a
// frame and draws only the visible rows of the file list, so a 2,000-file study does not freeze it.
// tus-js-client keeps each transfer's URL in localStorage: adding the same files after a closed tab
// or a dropped connection resumes them from the server's offset.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const text = {};
  document.getElementById("strings").content.querySelectorAll("[data-key]").forEach(function (node) {
    text[node.dataset.key] = node.textContent;
  });
  const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const SESSION_KEY = "imaging-cloud.upload-session." + location.host;
  const ROW_HEIGHT = 30;
  const $ = function (id) { return document.getElementById(id); };

  const state = { session: null, entries: [], queue: [], active: 0, paused: false, phase: "", finishing: false, started: 0 };
  let drawQueued = false;

  function api(method, url, body) {
    const headers = { "X-CSRFToken": csrfToken, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, { method: method, headers: headers, credentials: "same-origin",
                        body: body === undefined ? undefined : JSON.stringify(body) }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw Object.assign(new Error(data.detail || response.statusText), { status: response.status, data: data });
        return data;
      });
    });
  }

  // The session still open from an earlier visit is reused, so its transfers can be resumed.
  function ensureSession() {
    if (state.session) return Promise.resolve(state.session);
    const remembered = localStorage.getItem(SESSION_KEY);
    const open = remembered
      ? api("GET", "/api/v1/uploads/" + remembered + "/").then(function (s) { return s.status === "open" ? s : null; }, function () { return null; })
      : Promise.resolve(null);
    return open.then(function (session) {
      return session || api("POST", "/api/v1/uploads/", { label: new Date().toISOString().slice(0, 10) });
    }).then(function (session) {
      state.session = session.id;
      localStorage.setItem(SESSION_KEY, session.id);
      return session.id;
    });
  }

  function reasonFor(code, detail) {
    return { reason: config.reasons[code] || config.unknownReason, detail: detail || "" };
  }

  function addFiles(files) {
    if (!files.length) return;
    files.sort(function (a, b) { return a.path < b.path ? -1 : a.path > b.path ? 1 : 0; });
    ensureSession().then(function () {
      files.forEach(function (item) {
        const entry = { file: item.file, path: item.path || item.file.name, sent: 0, status: "waiting", reason: null, resumed: false };
        state.entries.push(entry);
        state.queue.push(entry);
      });
      state.started = state.started || Date.now();
      state.phase = "sending";
      $("progress").hidden = false;
      $("results").hidden = true;
      pump();
      scheduleDraw();
    }, function () { state.phase = "failed"; $("progress").hidden = false; scheduleDraw(); });
  }

  function pump() {
    while (!state.paused && state.active < config.parallel && state.queue.length) {
      start(state.queue.shift());
    }
    if (!state.paused && state.active === 0 && !state.queue.length && state.entries.length) finish();
  }

  function settle(entry, status) {
    entry.status = status;
    entry.upload = null;
    state.active -= 1;
    pump();
    scheduleDraw();
  }

  function start(entry) {
    state.active += 1;
    entry.status = "sending";
    const upload = new tus.Upload(entry.file, {
      endpoint: "/api/v1/uploads/" + state.session + "/tus/",
      chunkSize: config.pieceBytes,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      metadata: { filename: entry.file.name, filetype: entry.file.type || "application/octet-stream" },
      headers: { "X-CSRFToken": csrfToken },
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      // The session is part of the fingerprint: a file is resumed only into the session it began in.
      fingerprint: function (file) {
        return Promise.resolve(["imaging-cloud", state.session, entry.path, file.size, file.lastModified].join("/"));
      },
      onProgress: function (sent) { entry.sent = sent; state.offline = false; scheduleDraw(); },
      onShouldRetry: function (error) {
        const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        const retry = status === 0 || status === 409 || status === 423 || status >= 500;
        if (retry) { state.offline = status === 0; scheduleDraw(); }
        return retry;
      },
      onSuccess: function () { entry.sent = entry.file.size; settle(entry, "sent"); },
      onError: function (error) {
        if (entry.status !== "sending") return;
        let body = {};
        try { body = JSON.parse(error.originalResponse.getBody()); } catch (ignored) { /* no JSON answer */ }
        entry.reason = reasonFor(body.code || "", body.detail || error.message);
        settle(entry, "refused");
      },
    });
    entry.upload = upload;
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) { upload.resumeFromPreviousUpload(previous[0]); entry.resumed = true; }
      if (entry.upload === upload && !state.paused) upload.start();
    });
  }

  function pause() {
    state.paused = true;
    // Files being sent go back to the front of the queue; Resume asks the server for their offsets.
    state.entries.forEach(function (entry) {
      if (entry.status !== "sending") return;
      if (entry.upload) entry.upload.abort();
      entry.upload = null;
      entry.status = "waiting";
      state.queue.unshift(entry);
    });
    state.active = 0;
    scheduleDraw();
  }
  function resume() { state.paused = false; pump(); scheduleDraw(); }

  function finish() {
    if (state.finishing) return;
    const sent = state.entries.filter(function (entry) { return entry.status === "sent"; }).length;
    if (!sent) { state.phase = "done"; showResults(null, [], [], []); return; }
    state.finishing = true;
    state.phase = "processing";
    scheduleDraw();
    api("POST", "/api/v1/uploads/" + state.session + "/finish/").then(poll, poll);
  }

  function poll() {
    api("GET", "/api/v1/uploads/" + state.session + "/").then(function (session) {
      state.processed = session;
      scheduleDraw();
      if (session.status === "completed") return collect(session);
      // Still open: the finish was lost or came too early; finishing again is harmless.
      if (session.status === "open") return setTimeout(function () { api("POST", "/api/v1/uploads/" + state.session + "/finish/").then(poll, poll); }, 1000);
      setTimeout(poll, 1000);
    }, function () { setTimeout(poll, 3000); });
  }

  function all(url, results) {
    return api("GET", url).then(function (page) {
      results = (results || []).concat(page.results);
      return page.next ? all(page.next, results) : results;
    });
  }

  function collect(session) {
    const base = "/api/v1/uploads/" + session.id;
    Promise.all([all(base + "/items/?status=failed&limit=1000"), all(base + "/items/?status=duplicate&limit=1000"),
                 all(base + "/items/?status=stored&limit=1000"), all(base + "/files/?limit=1000")])
      .then(function (lists) {
        localStorage.removeItem(SESSION_KEY);
        state.phase = "done";
        showResults(session, lists[0], lists[1], lists[2], lists[3]);
      });
  }

  function cell(row, value, className) {
    const td = row.insertCell();
    td.textContent = value;
    if (className) td.className = className;
    return td;
  }

  function reasonCell(row, found) {
    const td = row.insertCell();
    const reason = document.createElement("div");
    reason.textContent = found.reason;
    td.appendChild(reason);
    if (found.detail) {
      const detail = document.createElement("div");
      detail.className = "small";
      detail.textContent = found.detail;
      td.appendChild(detail);
    }
  }

  function showResults(session, failed, duplicates, stored, files) {
    const refusedBody = $("refused").tBodies[0];
    const duplicateBody = $("duplicates").tBodies[0];
    refusedBody.textContent = "";
    duplicateBody.textContent = "";
    let refusedCount = 0;
    state.entries.forEach(function (entry) {
      if (entry.status !== "refused") return;
      refusedCount += 1;
      const row = refusedBody.insertRow();
      cell(row, entry.path);
      reasonCell(row, entry.reason);
    });
    (files || []).forEach(function (file) {
      if (file.status !== "refused") return;
      refusedCount += 1;
      const row = refusedBody.insertRow();
      cell(row, file.name);
      reasonCell(row, reasonFor(file.error_code, file.error_detail));
    });
    failed.forEach(function (item) {
      refusedCount += 1;
      const row = refusedBody.insertRow();
      cell(row, item.member_name === item.file ? item.file : item.file + " › " + item.member_name);
      reasonCell(row, reasonFor(item.failure_code, item.failure_detail));
    });
    duplicates.forEach(function (item) {
      const row = duplicateBody.insertRow();
      cell(row, item.member_name === item.file ? item.file : item.file + " › " + item.member_name);
      cell(row, item.study_instance_uid, "uid");
    });
    const studies = {};
    (stored || []).forEach(function (item) { studies[item.study_instance_uid] = (studies[item.study_instance_uid] || 0) + 1; });
    const list = $("studies");
    list.textContent = "";
    Object.keys(studies).forEach(function (uid) {
      const line = document.createElement("p");
      line.className = "study";
      line.textContent = text.study + " " + uid + ": " + studies[uid] + " " + text.images + " · ";
      const link = document.createElement("a");
      link.href = "/consults/";
      link.textContent = text.openStudy;
      line.appendChild(link);
      list.appendChild(line);
    });
    $("total-stored").textContent = session ? session.items_stored : 0;
    $("total-duplicate").textContent = session ? session.items_duplicate : 0;
    $("total-refused").textContent = refusedCount;
    $("refused").hidden = $("refused-title").hidden = refusedCount === 0;
    $("duplicates").hidden = $("duplicate-title").hidden = duplicates.length === 0;
    $("results").hidden = false;
    $("results").scrollIntoView({ block: "start" });
    scheduleDraw();
  }

  function again() {
    state.session = null;
    state.entries = [];
    state.queue = [];
    state.finishing = false;
    state.processed = null;
    state.started = 0;
    $("results").hidden = true;
    $("progress").hidden = true;
  }

  // --- drawing: once a frame at most, only the rows in view --------------------------------------
  function scheduleDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(function () { drawQueued = false; draw(); });
  }

  function megabytes(bytes) {
    return bytes < 1048576 ? Math.ceil(bytes / 1024) + " kB" : (bytes / 1048576).toFixed(1) + " MB";
  }

  function statusText(entry) {
    if (entry.status === "refused") return text.refusedWhileSending;
    if (entry.status === "sent") return text.sent;
    if (entry.status === "waiting") return text.waiting;
    return Math.floor((100 * entry.sent) / Math.max(entry.file.size, 1)) + "%" + (entry.resumed ? " · " + text.resumed : "");
  }

  function draw() {
    let total = 0, sent = 0, done = 0;
    state.entries.forEach(function (entry) {
      total += entry.file.size;
      sent += entry.status === "refused" ? entry.file.size : entry.sent;
      if (entry.status === "sent" || entry.status === "refused") done += 1;
    });
    const phase = state.paused ? "paused" : state.offline ? "offline" : state.phase;
    $("phase").textContent = text[phase] || "";
    $("counts").textContent = done + " " + text.of + " " + state.entries.length + " " + text.files;
    const bar = $("overall");
    if (state.phase === "processing" && state.processed) {
      bar.max = Math.max(state.processed.files_received, 1);
      bar.value = state.processed.files_done;
    } else {
      bar.max = Math.max(total, 1);
      bar.value = sent;
    }
    $("bytes").textContent = megabytes(sent) + " / " + megabytes(total);
    const seconds = (Date.now() - state.started) / 1000;
    $("speed").textContent = state.phase === "sending" && seconds > 1 ? megabytes(sent / seconds) + "/s" : "";
    $("pause").hidden = state.paused || state.phase !== "sending";
    $("resume").hidden = !state.paused;
    drawRows();
  }

  function drawRows() {
    const list = $("file-list");
    const spacer = $("file-list-spacer");
    spacer.style.height = state.entries.length * ROW_HEIGHT + "px";
    const first = Math.floor(list.scrollTop / ROW_HEIGHT);
    const count = Math.ceil(list.clientHeight / ROW_HEIGHT) + 2;
    const rows = list.querySelectorAll(".file-row");
    for (let i = 0; i < Math.max(rows.length, count); i++) {
      let row = rows[i];
      const entry = state.entries[first + i];
      if (!entry) { if (row) row.hidden = true; continue; }
      if (!row) {
        row = document.createElement("div");
        row.className = "file-row";
        row.setAttribute("role", "listitem");
        row.innerHTML = '<span class="name"></span><span class="size"></span><span class="state"></span><span class="bar"><span></span></span>';
        list.appendChild(row);
      }
      row.hidden = false;
      row.style.top = (first + i) * ROW_HEIGHT + "px";
      row.dataset.status = entry.status;
      row.children[0].textContent = entry.path;
      row.children[0].title = entry.reason ? entry.reason.reason : entry.path;
      row.children[1].textContent = megabytes(entry.file.size);
      row.children[2].textContent = statusText(entry);
      row.children[3].firstChild.style.width = (entry.status === "sent" ? 100 : (100 * entry.sent) / Math.max(entry.file.size, 1)) + "%";
    }
  }

  // --- collecting files: pickers and drops (folders read recursively) ----------------------------
  function readEntry(entry, found) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) { found.push({ file: file, path: entry.fullPath.replace(/^\//, "") }); resolve(); }, resolve);
      });
    }
    if (!entry.isDirectory) return Promise.resolve();
    const reader = entry.createReader();
    return new Promise(function (resolve) {
      // readEntries answers in batches (about 100 at a time in Chromium) until it answers none.
      function batch() {
        reader.readEntries(function (children) {
          if (!children.length) return resolve();
          Promise.all(children.map(function (child) { return readEntry(child, found); })).then(batch);
        }, resolve);
      }
      batch();
    });
  }

  function fromInput(input) {
    const files = Array.prototype.map.call(input.files, function (file) {
      return { file: file, path: file.webkitRelativePath || file.name };
    });
    input.value = "";
    addFiles(files);
  }

  const zone = $("drop-zone");
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    const found = [];
    const entries = Array.prototype.map.call(event.dataTransfer.items, function (item) {
      return item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    }).filter(Boolean);
    if (!entries.length) {
      addFiles(Array.prototype.map.call(event.dataTransfer.files, function (file) { return { file: file, path: file.name }; }));
      return;
    }
    state.phase = "reading";
    Promise.all(entries.map(function (entry) { return readEntry(entry, found); })).then(function () { addFiles(found); });
  });
  $("pick-folder").addEventListener("change", function (event) { fromInput(event.target); });
  $("pick-files").addEventListener("change", function (event) { fromInput(event.target); });
  $("pause").addEventListener("click", pause);
  $("resume").addEventListener("click", resume);
  $("again").addEventListener("click", again);
  $("file-list").addEventListener("scroll", scheduleDraw, { passive: true });
})();
