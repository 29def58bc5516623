// Vitest glue for labs: build one before the tests of a file and destroy it after them, even when
// tests fail. Without root, createLab throws an explanatory error in beforeAll, so every test of
// the file fails with that message instead of being skipped.

import { afterAll, beforeAll } from 'vitest';
import { createLab, type Lab, type LabOptions } from '../../../scripts/lab.js';

/** Returns an accessor for the file's lab (valid inside tests). */
export function useLab(opts: LabOptions = {}): () => Lab {
  let lab: Lab | undefined;
  let failure: unknown;
  beforeAll(async () => {
    try {
      lab = await createLab(opts);
    } catch (e) {
      failure = e;
      throw e;
    }
  });
  afterAll(async () => {
    await lab?.destroy();
  });
  return () => {
    if (lab === undefined) {
      throw new Error(`the lab was not built: ${failure instanceof Error ? failure.message : String(failure)}`);
    }
    return lab;
  };
}
