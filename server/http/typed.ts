import type { operations } from '../../openapi/generated/dataprotect.js';

// Handler types derived from the generated contract (dependencies.md, Appendix B), restricted to the success
// answers: errors are thrown as domain errors and mapped to problem documents in one place (problem.ts).

export type Op = keyof operations;
/** BlueMind's IDataProtect and ITask at BlueMind's paths (tag bluemind-compat), bound in bluemind.ts. */
export type BlueMindOp = Extract<Op, `bm${string}`>;
type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
export type Body<K extends Op> = operations[K] extends { requestBody: infer R } ? Json<NonNullable<R>> : never;
export type PathParams<K extends Op> = operations[K]['parameters'] extends { path: infer P } ? P : never;
export type Query<K extends Op> = operations[K]['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never;
type Success = 200 | 201 | 202 | 204;
export type Reply<K extends Op> = {
  [S in keyof operations[K]['responses'] & Success]: { status: S; body: Json<operations[K]['responses'][S]> };
}[keyof operations[K]['responses'] & Success];
