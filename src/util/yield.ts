// One turn of the event loop: timers and I/O callbacks run before this resolves. setImmediate under Node;
// elsewhere a MessageChannel message (setTimeout(0) is clamped to 4 ms once nested in browsers).
let channel: InstanceType<typeof MessageChannel> | undefined;
const waiting: (() => void)[] = [];

export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (g.setImmediate) return new Promise((r) => g.setImmediate!(r));
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.addEventListener("message", () => waiting.shift()?.());
    channel.port1.start();
  }
  return new Promise((r) => {
    waiting.push(r);
    channel!.port2.postMessage(0);
  });
}
