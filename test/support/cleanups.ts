// Undo what a test set up, after each test, last first: every cleanup runs even when one before
// it fails (that failure is printed, so a leak is seen rather than hidden behind the next one).

import { afterEach } from "bun:test";

export type Cleanup = () => unknown;

/** An array to push cleanups onto; afterEach runs and empties it. Call once, at the top of a file. */
export function cleanupAfterEach(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.error(`cleanup: ${(error as Error).message}`);
      }
    }
  });
  return cleanups;
}
