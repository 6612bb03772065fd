// Proves the test harness itself: this file runs under Node and Deno, and a failing assertion fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tableFromArrays } from 'apache-arrow';

test('apache-arrow loads in this runtime', () => {
  const t = tableFromArrays({ a: Int32Array.from([1, 2, 3]) });
  assert.is(t.numRows, 3);
  if (process.env.CAIRN_SELF_TEST_FAIL) assert.is(1, 2);
});

test.run();
