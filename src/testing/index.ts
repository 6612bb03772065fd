/**
 * 'cairn/testing': deterministic fault injection for users who test their own recovery paths.
 *
 * - FaultyStorage wraps any CheckpointStorage: fail the n-th operation (EIO or ENOSPC, transient or
 *   persistent), fail at random with a seeded PRNG, tear a put, or crash at an operation. Its op log
 *   lists every storage operation, so a test can run a checkpoint cycle once, then re-run it with a
 *   fault at each operation it made (see test/reliability/ in the Cairn repository).
 * - SimulatedFs is an in-memory file system for FsCheckpointStorage (`new FsCheckpointStorage(dir,
 *   { fs: new SimulatedFs() })`) that loses everything not fsynced when it crashes, with short
 *   writes, ENOSPC, lost renames and EIO at chosen calls. FsOps is the interface to write another.
 * - mulberry32 is the seeded PRNG both use, for generating reproducible workloads.
 */
export { FaultyStorage, mulberry32 } from './faulty-storage.js';
export type { FaultCode, FaultSpec, StorageOp, StorageOpKind } from './faulty-storage.js';
export { SimulatedFs } from './simulated-fs.js';
export type { SimulatedFault, FsOpKind } from './simulated-fs.js';
export type { FsOps, FsHandle, FsDirEntry, FsCheckpointStorageOptions } from '../storage/fs.js';
