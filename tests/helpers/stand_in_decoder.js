// A decode worker for the pool's tests: answers at once, or wedges forever (a codec stuck on a
// pathological file) when the job's size is negative. Plain JavaScript, so a cold start has no
// type check to wait for inside the pool's timeout.
self.onmessage = (event) => {
  const { id, size } = event.data;
  while (size < 0) { /* wedged */ }
  self.postMessage({ id, ok: true, width: size, height: size });
};
