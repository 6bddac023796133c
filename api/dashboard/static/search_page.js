// The search page: polls the search and its figures' routes together; each figure is drawn
// (Plotly.react: no redraw from scratch) as soon as its own data is in and changed.
import { plotlyReady, poll } from "./common.js";
import * as controls from "./controls.js";
import * as curves from "./curves.js";
import * as ensembles from "./ensembles.js";
import * as importance from "./importance.js";
import * as leaderboard from "./leaderboard.js";
import * as parallel from "./parallel.js";
import * as scatter from "./scatter.js";
import * as timeline from "./timeline.js";

const searchId = document.getElementById("search-root").dataset.searchId;
const base = `/searches/${searchId}`;
const byId = (id) => document.getElementById(id);

const plotly = plotlyReady();
const drawn = (draw) => async (...results) => {
  await plotly;
  draw(...results);
};
controls.setup(searchId);
leaderboard.setup(searchId);
ensembles.setup(searchId);
let first = true;
leaderboard.refresh(); // at once, beside the figures' requests; again whenever the search changed
poll([
  [[base], ({ data }) => {
    controls.show(data);
    leaderboard.showStages(data);
    if (!first) leaderboard.refresh();
    first = false;
  }],
  [[base, `${base}/points`], drawn((detail, points) => {
    scatter.draw(byId("scatter"), detail.data, points.data);
    parallel.draw(byId("parallel"), detail.data, points.data);
  })],
  [[`${base}/learned`], drawn(({ data }) => importance.draw(byId("importance"), data))],
  [[`${base}/curves`], drawn(({ data }) => curves.draw(byId("curves"), data))],
  [[`${base}/timeline`], drawn(({ data }) => timeline.draw(byId("timeline"), data))],
  [[`${base}/ensembles`], drawn(({ data }) => ensembles.draw(document.querySelector("#ensembles tbody"), byId("ensemble-chart"), data))],
]);
