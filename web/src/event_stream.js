// The server's live events (/api/stream, text/event-stream) read with fetch rather than
// EventSource, because EventSource cannot send the Authorization header a token-protected server
// needs. Reconnects after a drop, resuming with Last-Event-ID after the newest event received.
const RECONNECT_MS = 2000;

export function openEventStream(path, { headers, after, onEvent, onState }) {
  let stopped = false;
  const connect = async () => {
    const id = after();
    try {
      const res = await fetch(path, { headers: { ...headers, Accept: 'text/event-stream', ...(id ? { 'Last-Event-ID': id } : {}) } });
      if (!res.ok || !res.body) throw new Error(`${path}: ${res.status}`);
      onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {  // one message per blank line (the server writes \n only)
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          const isError = message.split('\n').includes('event: error');
          if (!data) continue;  // a comment (heartbeat) or the retry field
          if (isError) throw new Error(JSON.parse(data).error);
          onEvent(JSON.parse(data));
        }
      }
    } catch (err) {
      console.warn(`live updates: ${err.message}; reconnecting`);
    }
    onState(false);
    if (!stopped) setTimeout(connect, RECONNECT_MS);
  };
  connect();
  return () => { stopped = true; };
}
