// `audiox-ts/parity`: run reference fixtures (safetensors files of inputs, weights and expected outputs)
// through the same code paths users run, and compare within each fixture's tolerances.
export { runHarness, runFixture, findFixtureFiles, openFixture, compareOutputs, formatResult, loadRunners, type HarnessOptions, type Comparison } from './harness.ts';
export type { Fixture, FixtureResult, Runner, RunnerResult, ComputedOutputs, SelfCheckedResult } from './types.ts';
