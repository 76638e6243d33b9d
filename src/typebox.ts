/**
 * All of TypeBox, the copy this package depends on (`serverless-middle-management/typebox`),
 * for schemas beyond the builders of `Type`: import it as a namespace
 * (`import * as TypeBox from 'serverless-middle-management/typebox'`) and a bundler keeps only
 * what is used.
 */
export * from '@sinclair/typebox';
