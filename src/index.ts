/**
 * Cairn's public API. Everything a user or an engine imports from 'cairn' is named here; internals
 * are not re-exported. Optional pieces live under subpaths: 'cairn/streams' and 'cairn/testing'.
 */
export { StateBackend, DEFAULT_KEY_GROUPS } from './backend.js';
export type { OpenOptions, Metrics, ShardMetrics, KeyGroupMetrics } from './backend.js';
export { CairnError, RETRYABLE_KINDS, isCairnError } from './errors.js';
export type { CairnErrorKind } from './errors.js';
export { AggregateOperator } from './store/aggregate-operator.js';
export type { IngestResult } from './store/aggregate-operator.js';
export { ValueState } from './store/value-state.js';
export type { AggregateSpec, ValueSpec, WindowSpec, AggregateFn, KeyType } from './store/spec.js';
export type { BatchInput, Column } from './store/batch.js';
export { hashKey } from './shard/hash.js';
export type { CheckpointOptions, RestoreOptions, RestoreReport } from './backend.js';
export type { CheckpointResult } from './checkpoint/coordinator.js';
export type { CheckpointStorage } from './storage/storage.js';
export { notFound, isNotFound, validateName, validatePrefix } from './storage/storage.js';
export { FsCheckpointStorage } from './storage/fs.js';
export { MemoryCheckpointStorage } from './storage/memory.js';
export { TieredCheckpointStorage } from './storage/tiered.js';
export type { Codec } from './codec/codec.js';
export { ZstdCodecJs, NativeZstdCodec, NoneCodec, defaultCodec, nativeZstdAvailable } from './codec/codec.js';
