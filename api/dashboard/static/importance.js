// Which hyperparameters matter: each one's share of the validation-accuracy variance its
// main effect explains (GET /searches/{id}/learned), as bars, highest first.
import { draw as plot, leftMargin } from "./common.js";

export function draw(element, learned) {
  const names = Object.keys(learned.importance);
  const shares = names.map((name) => learned.importance[name]);
  const layout = {
    xaxis: { title: { text: "share of val. accuracy variance explained" }, range: [0, Math.max(0.05, ...shares) * 1.1] },
    yaxis: { autorange: "reversed" },
    margin: { t: 10, r: 20, b: 50, l: leftMargin(names) },
    height: Math.max(160, 40 * names.length + 90),
  };
  if (!names.length) {
    layout.annotations = [{ text: "not enough completed trials yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
  }
  element.style.height = `${layout.height}px`;
  const bars = { type: "bar", orientation: "h", x: shares, y: names, hovertemplate: "%{y}: %{x:.3f}<extra></extra>" };
  plot(element, names.length ? [bars] : [], layout);
}
