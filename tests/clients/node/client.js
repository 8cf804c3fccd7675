#!/usr/bin/env node
// A cross-language check of toolgym's public gRPC API: @grpc/grpc-js + @grpc/proto-loader, loading only
// the .proto files under protos/. Usage: node client.js HOST:PORT
// Prints one JSON line of results; exits 1 when any check fails (2 on bad usage or a crash).
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "..", "..", "..", "protos");
const FILES = ["env.proto", "reward.proto", "eval.proto"].map((f) => `toolgym/v1/${f}`);
const DEADLINE_MS = 60000;
const TASK = "multi_turn_base_0";
// Ground-truth-like calls of multi_turn_base_0, one list per user turn (checked against info_json's tools).
const PLAN = [
  [["cd", { folder: "document" }], ["mkdir", { dir_name: "temp" }], ["mv", { source: "final_report.pdf", destination: "temp" }]],
  [["cd", { folder: "temp" }], ["grep", { file_name: "final_report.pdf", pattern: "budget analysis" }]],
  [["sort", { file_name: "final_report.pdf" }]],
  [["cd", { folder: ".." }], ["mv", { source: "previous_report.pdf", destination: "temp" }], ["cd", { folder: "temp" }],
   ["diff", { file_name1: "final_report.pdf", file_name2: "previous_report.pdf" }]],
];
const MAX_STEPS = 40;

const failures = [];
function check(cond, what) {
  if (!cond) failures.push(what);
  return cond;
}

function call(client, method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

// The gRPC status code of a call that must fail (null when it unexpectedly succeeded).
async function codeOf(client, method, req) {
  try {
    await call(client, method, req);
    return null;
  } catch (e) {
    if (typeof e.code !== "number") throw e;
    return e.code;
  }
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    failures.push(`${what}: not JSON (${e.message})`);
    return null;
  }
}

const hermes = (name, args) => `<tool_call>${JSON.stringify({ name, arguments: args })}</tool_call>`;

async function episode(env) {
  const out = { task_id: TASK, steps: 0, turns_played: 0 };
  const reset = await call(env, "Reset", { task_id: TASK, template: "hermes" });
  const info = parseJson(reset.info_json, "Reset.info_json") || {};
  check(info.task_id === TASK, `Reset.info_json.task_id is ${JSON.stringify(info.task_id)}, not ${TASK}`);
  check(reset.observation.includes(info.user_prompt || "\u0000"), "Reset.observation does not contain info_json.user_prompt");
  const tools = new Set((info.tools || []).map((t) => t.name || (t.function || {}).name));
  const missing = [...new Set(PLAN.flat().map(([n]) => n))].filter((n) => !tools.has(n));
  check(missing.length === 0, `tools missing from Reset.info_json.tools: ${missing.join(", ")}`);

  let last = null;
  const step = async (action) => {
    last = await call(env, "Step", { session_id: reset.session_id, action, step_index: out.steps });
    check(Number(last.step_index) === out.steps, `Step ${out.steps} answered step_index ${last.step_index}`);
    out.steps += 1;
    return last.terminated || last.truncated;
  };
  const endTurn = async () => {
    out.turns_played += 1;  // plain text ends the user turn
    return step("Done with this request.");
  };
  let done = false;
  for (const turn of PLAN) {
    for (const [name, args] of turn) {
      if ((done = await step(hermes(name, args)))) break;
      check(last.observation.includes("<tool_response>"), `Step ${out.steps - 1} (${name}): no <tool_response> in the observation`);
    }
    if (done || (done = await endTurn())) break;
  }
  while (!done && out.steps < MAX_STEPS) done = await endTurn();
  check(done, `episode neither terminated nor truncated after ${out.steps} steps`);
  const stepInfo = parseJson(last.info_json, "final Step.info_json");
  out.terminated = last.terminated;
  out.truncated = last.truncated;
  out.reward = last.reward;
  check(typeof last.reward === "number" && Number.isFinite(last.reward), `terminal reward ${last.reward} is not a finite number`);
  out.score = last.score ? { total: last.score.total, valid: last.score.valid, components: last.score.components } : null;
  check(out.score !== null, "the final Step carries no ScoreResult");
  out.info_keys = stepInfo ? Object.keys(stepInfo).sort() : null;

  // Error path on the live session: a negative step_index is INVALID_ARGUMENT.
  out.negative_step_index_code = await codeOf(env, "Step", { session_id: reset.session_id, action: "x", step_index: -1 });
  check(out.negative_step_index_code === grpc.status.INVALID_ARGUMENT,
    `Step with step_index -1 gave code ${out.negative_step_index_code}, expected ${grpc.status.INVALID_ARGUMENT} (INVALID_ARGUMENT)`);
  out.closed = (await call(env, "Close", { session_id: reset.session_id })).closed;
  check(out.closed === true, "Close did not answer closed=true");
  out.bogus_task_code = await codeOf(env, "Reset", { task_id: "no_such_task_xyz", template: "hermes" });
  check(out.bogus_task_code === grpc.status.NOT_FOUND,
    `Reset with a bogus task id gave code ${out.bogus_task_code}, expected ${grpc.status.NOT_FOUND} (NOT_FOUND)`);
  return out;
}

async function batch(reward) {
  const items = [
    { task_id: "simple_python_0", template: "hermes", request_id: "correct",
      output: hermes("calculate_triangle_area", { base: 10, height: 5 }) },
    { task_id: "simple_python_0", template: "hermes", request_id: "wrong",
      output: hermes("calculate_triangle_area", { base: 7, height: 3 }) },
    { task_id: "no_such_task_xyz", template: "hermes", request_id: "unknown", output: "hi" },
  ];
  const res = await call(reward, "ScoreBatch", { items });
  const out = { n: res.results.length };
  if (!check(res.results.length === items.length, `ScoreBatch returned ${res.results.length} results for ${items.length} items`)) return out;
  const [ok, bad, unknown] = res.results;
  check(res.results.map((r) => r.request_id).join() === "correct,wrong,unknown", "ScoreBatch results not in request order by request_id");
  out.correct = ok.result ? ok.result.total : null;
  out.wrong = bad.result ? bad.result.total : null;
  out.correct_valid = ok.result ? ok.result.valid : null;
  out.unknown_error_code = unknown.error ? unknown.error.code : null;
  check(!ok.error && !bad.error, "a ScoreBatch item of simple_python_0 came back with an ItemError");
  check(Number.isFinite(out.correct) && Number.isFinite(out.wrong), "ScoreBatch totals are not finite numbers");
  check(out.correct > out.wrong, `correct output scored ${out.correct}, not above the wrong one's ${out.wrong}`);
  check(out.unknown_error_code === grpc.status.NOT_FOUND, `unknown task item: ItemError code ${out.unknown_error_code}, expected 5`);
  return out;
}

async function main() {
  const address = process.argv[2];
  if (!address) {
    console.error("usage: node client.js HOST:PORT   (a running `toolgym serve`, e.g. 127.0.0.1:50051)");
    process.exit(2);
  }
  const def = protoLoader.loadSync(FILES, { includeDirs: [PROTOS], keepCase: true, longs: Number, defaults: true, oneofs: true });
  const v1 = grpc.loadPackageDefinition(def).toolgym.v1;
  check(typeof v1.EvalService === "function", "eval.proto did not define toolgym.v1.EvalService");
  const creds = grpc.credentials.createInsecure();
  const env = new v1.EnvService(address, creds);
  const reward = new v1.RewardService(address, creds);
  const result = { address, episode: await episode(env), batch: await batch(reward) };
  // Not env.close() (nor grpc.closeClient): the Close RPC's lower-case alias shadows Client#close.
  env.getChannel().close();
  reward.getChannel().close();
  result.failures = failures;
  result.ok = failures.length === 0;
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => {
  if (process.env.TOOLGYM_DEBUG) console.error(e.stack);
  console.log(JSON.stringify({ ok: false, failures: [...failures, `crashed: ${e.code !== undefined ? `gRPC code ${e.code}: ` : ""}${e.message}`] }));
  process.exit(2);
});
