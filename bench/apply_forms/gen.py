# Generates the RESP input of bench/apply_forms/compare.sh: ROUNDS rounds over LEADS leads of a
# tracking-like apply (one record written, one read and kept, memo ~600 B, data ~150 B, two keys
# registered, LPUSH + LTRIM + SET as extra commands) in one of two forms:
#   lua    EVALSHA of the apply script SHA, with the arguments ApplyOnce::ScriptArgs builds
#   multi  WATCH + the reads, then MULTI / the same writes / EXEC
# Usage: gen.py lua|multi LEADS ROUNDS SHA > input.resp
import sys, os
form, leads, rounds, sha = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
memo = os.urandom(300).hex().encode()[:600]
data = os.urandom(75).hex().encode()
entry = os.urandom(100).hex().encode()
inc = {}
for r in range(rounds):
    for l in range(leads):
        lead = "{L-%d}" % l
        dedup, tomb, reg = f"t:{lead}:applied:m{r}", f"t:{lead}:erased", f"t:{lead}:keys"
        rec, keep = f"t:{lead}:history", f"t:pending:{{u{l}}}"
        tl, ident = f"t:{lead}:timeline", f"t:id:{{u{l}}}"
        extras = [["LPUSH", tl, entry], ["LTRIM", tl, "0", "199"], ["SET", ident, lead]]
        if form == "lua":
            if r == 0:
                inc[l] = os.urandom(8).hex()
                per = ["0", "set", data, "0", "", inc[l]]
            else:
                per = [str(r), "set", data, "0", inc[l], ""]
            args = ["86400000", memo, "2"] + per + ["0", "keep", "", "0", "", ""]
            args += ["2", tl, ident, "3"]
            for e in extras: args += [str(len(e))] + e
            cmd("EVALSHA", sha, "5", dedup, tomb, reg, rec, keep, *args)
        else:
            cmd("WATCH", dedup, tomb, rec, keep)
            cmd("GET", dedup); cmd("EXISTS", tomb)
            cmd("HMGET", rec, "v", "i"); cmd("EXISTS", keep)
            cmd("MULTI")
            cmd("HSET", rec, "v", str(r + 1), "d", data); cmd("PERSIST", rec)
            if r == 0: cmd("SADD", reg, rec)
            cmd("SADD", reg, tl, ident)
            for e in extras: cmd(*e)
            cmd("SET", dedup, memo, "PX", "86400000")
            cmd("ZREMRANGEBYSCORE", reg + ":expiring", "-inf", "1700000000000")
            cmd("ZADD", reg + ":expiring", "1800000000000", dedup)
            cmd("EXEC")
