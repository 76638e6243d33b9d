// Stands in for the `level` package in the bundled local stack (scripts/build-local.mjs):
// dynalite loads it only for an on-disk store, which needs a native addon that a bundle
// cannot carry. The stack always runs dynalite in memory (memory-level).
'use strict';
class Level {
  constructor() {
    throw new Error('middle-management dev runs dynalite in memory only (no on-disk store)');
  }
}
exports.Level = Level;
