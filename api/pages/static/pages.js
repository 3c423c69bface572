// Every page: forms marked data-confirm ask first (without JavaScript the server asks instead),
// and an upload form shows its progress.
(() => {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    form.elements.confirmed.value = "yes";
  });

  const upload = document.getElementById("upload");
  if (!upload) return;
  upload.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = upload.elements.file.files[0];
    if (!file) return;
    const bar = document.getElementById("upload-progress");
    const message = document.getElementById("upload-message");
    const request = new XMLHttpRequest();
    // The raw file as the body: streamed to disk by the server, however large.
    request.open("POST", `/v1/datasets?filename=${encodeURIComponent(file.name)}`);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    });
    request.addEventListener("load", () => {
      if (request.status === 201) {
        location.reload();
        return;
      }
      let text = request.responseText;
      try { text = JSON.parse(text).detail.message; } catch (error) { /* not JSON */ }
      message.textContent = `Upload refused (${request.status}): ${text}`;
    });
    request.addEventListener("error", () => { message.textContent = "Upload failed: connection lost."; });
    bar.hidden = false;
    bar.value = 0;
    message.textContent = `Uploading ${file.name}…`;
    request.send(file);
  });
})();
