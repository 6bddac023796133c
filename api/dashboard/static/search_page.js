// The search page: polls the search, its points, best curves and timeline together and
// hands each figure module the data it draws (Plotly.react: no redraw from scratch).
import { plotlyReady, poll } from "./common.js";
import * as controls from "./controls.js";
import * as curves from "./curves.js";
import * as ensembles from "./ensembles.js";
import * as leaderboard from "./leaderboard.js";
import * as parallel from "./parallel.js";
import * as scatter from "./scatter.js";
import * as timeline from "./timeline.js";

const searchId = document.getElementById("search-root").dataset.searchId;
const base = `/searches/${searchId}`;

const plotly = plotlyReady();
controls.setup(searchId);
leaderboard.setup(searchId);
ensembles.setup(searchId);
poll(
  [base, `${base}/points`, `${base}/curves`, `${base}/timeline`, `${base}/ensembles`],
  async (detail, points, best, bars, built) => {
    if (detail.changed) {
      controls.show(detail.data);
      await leaderboard.refresh(detail.data);
    }
    await plotly;
    if (detail.changed || points.changed) {
      scatter.draw(document.getElementById("scatter"), detail.data, points.data);
      parallel.draw(document.getElementById("parallel"), detail.data, points.data);
    }
    if (best.changed) curves.draw(document.getElementById("curves"), best.data);
    if (bars.changed) timeline.draw(document.getElementById("timeline"), bars.data);
    if (built.changed) {
      ensembles.draw(document.querySelector("#ensembles tbody"), document.getElementById("ensemble-chart"), built.data);
    }
  },
);
