/**
 * The TypeBox builders behind `Type` (`import { Type } from 'serverless-middle-management'`):
 * the ones JSON arguments need. One by one, not TypeBox's whole namespace, because a
 * bundler cannot drop unused members of a re-exported namespace: every builder listed
 * here is in every bundle. Everything else of TypeBox (Record, Partial, Pick, Intersect…)
 * is `import * as TypeBox from 'serverless-middle-management/typebox'`, which a bundler
 * trims to what is used.
 */
export { Any, Array, Boolean, Enum, Integer, Literal, Null, Number, Object, Optional, String, Tuple, Union, Unknown } from '@sinclair/typebox';
