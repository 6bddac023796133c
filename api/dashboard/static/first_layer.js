// First-layer weights as images (a PNG mosaic from the latest checkpoint) when the input
// is an image; the image is fetched again only when the trial's figures changed.
import { el } from "./common.js";

export function show(container, trialId, figures) {
  if (!figures.first_layer_image) {
    container.replaceChildren(el("p", { text: "The input is not an image (or there is no checkpoint yet)." }));
    return;
  }
  const image = el("img", { alt: "first-layer weights", src: `/trials/${trialId}/first-layer.png?epoch=${figures.epoch.at(-1) ?? 0}` });
  container.replaceChildren(image);
}
