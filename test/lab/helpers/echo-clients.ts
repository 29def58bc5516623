// Python clients for the replication lab tests (python3 is in every lab namespace; bash's /dev/tcp
// is not everywhere).

// Connections at once, each sending seeded random bytes at a paced rate (so the streams last
// several seconds) from its own thread while another reads the echo; progress lines (bytes echoed
// in total) let the test kill the primary mid-stream; the last line is the JSON verdict.
export const PY_MANY_ECHO = String.raw`
import json, random, socket, sys, threading, time
host, port, conns, n, rate, idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
received = [0] * conns
failures = []
ok = [0]
lock = threading.Lock()
def one(i):
    data = random.Random(1000 + i).randbytes(n)
    try:
        s = socket.create_connection((host, port), timeout=idle)
    except Exception as e:
        with lock: failures.append('conn %d: connect: %r' % (i, e))
        return
    def sender():
        t0 = time.time()
        off = 0
        try:
            while off < n:
                k = s.send(data[off:off + 16384])
                off += k
                ahead = off / rate - (time.time() - t0)
                if ahead > 0: time.sleep(ahead)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            with lock: failures.append('conn %d: send after %d: %r' % (i, off, e))
    th = threading.Thread(target=sender)
    th.start()
    buf = bytearray()
    try:
        while True:
            d = s.recv(1 << 16)
            if not d: break
            buf += d
            received[i] = len(buf)
    except Exception as e:
        with lock: failures.append('conn %d: recv after %d: %r' % (i, len(buf), e))
    th.join()
    s.close()
    if bytes(buf) == data:
        with lock: ok[0] += 1
    else:
        m = next((j for j in range(min(len(buf), n)) if buf[j] != data[j]), min(len(buf), n))
        with lock: failures.append('conn %d: got %d of %d bytes, first difference at %d' % (i, len(buf), n, m))
threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in threads: t.start()
while any(t.is_alive() for t in threads):
    print('progress %d' % sum(received), flush=True)
    time.sleep(0.05)
for t in threads: t.join()
print(json.dumps({'ok': ok[0], 'failures': failures}), flush=True)
`;
