// Entry point of the executable (scripts/build.ts) and of `bun src/main.ts`: the program of
// src/cli/run.ts with this process's arguments and seams. Only as the entry point does it run:
// imported (as scripts/coverage.ts does to count its lines), it does nothing.

import { processSeams, runProgram } from "./cli/run.ts";

if (import.meta.main) await runProgram(process.argv.slice(2), processSeams());
