/**
 * aws-local-stepfunctions 3 targets Node.js 22; the project also runs and tests
 * on Node.js 20, which lacks `Promise.withResolvers` (its one Node 22 feature it
 * uses; `AbortSignal.any` is in Node 20.3+). Imported before the library.
 */
const promise = Promise as unknown as { withResolvers?: () => unknown };
promise.withResolvers ??= function withResolvers<T>() {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const settled = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise: settled, resolve, reject };
};
