// The sign-in form: POST /session {token} (the token stays out of every URL), then go on.
const form = document.getElementById("sign-in-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  error.textContent = "";
  const response = await fetch("/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token: document.getElementById("token").value }),
  });
  await response.text();
  if (response.ok) {
    window.location.assign(form.dataset.next || "/");
  } else {
    error.textContent = response.status === 401 ? "That token is not valid." : `Sign-in failed (HTTP ${response.status}).`;
  }
});
