/**
 * In this repository `serverless-middle-management` resolves to src/ (tsconfig paths,
 * honoured by tsc and tsx), even where example/node_modules holds the packed tarball:
 * the example's commands and the tests share one copy of every class.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as publicApi from 'serverless-middle-management';
import * as testing from 'serverless-middle-management/testing';
import { commandLoaders } from '../../example/commands/index.js';
import * as errors from '../../src/errors.js';
import { defineCommand } from '../../src/command.js';

describe('the package name inside this repository', () => {
  it('is the sources: one class per error, one defineCommand', () => {
    assert.equal(publicApi.CommandFailed, errors.CommandFailed);
    assert.equal(publicApi.InvalidArguments, errors.InvalidArguments);
    assert.equal(publicApi.defineCommand, defineCommand);
  });

  it('errors thrown for the example’s commands are instances of the sources’ classes', async () => {
    await assert.rejects(testing.runCommand((await commandLoaders.fail()).default, { message: 'boom' }), (error: unknown) => {
      assert.ok(error instanceof errors.CommandFailed);
      assert.equal((error as Error).message, 'boom');
      return true;
    });
    await assert.rejects(testing.runCommand((await commandLoaders.echo()).default, {}), (error: unknown) => error instanceof errors.InvalidArguments);
  });
});
