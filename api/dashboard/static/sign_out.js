// The header's sign-out button: DELETE /session, then the sign-in page.
import { send } from "./common.js";

document.getElementById("sign-out").addEventListener("click", async () => {
  await send("DELETE", "/session");
  window.location.assign("/sign-in");
});
