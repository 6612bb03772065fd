/**
 * The `cairn/streams` subpath: WHATWG stream adapters for engines built on web streams (Node, Deno,
 * browsers). Everything public is named here.
 */
export { WindowedAggregation, windowedAggregation, restoredStreamMeta, END_OF_TIME_MS, OUT_OF_ORDERNESS_MS_MAX } from './windowed-aggregation.js';
export type { WindowedAggregationOptions, StreamCheckpointMeta, CheckpointInfo, CheckpointTotals } from './windowed-aggregation.js';
