import sys, os
stamps = []
for m in list(sys.modules.values()):
    f = getattr(m, '__file__', None)
    if f:
        try:
            stamps.append('%s=%r' % (f, os.stat(f).st_mtime))
        except OSError:
            pass
result = '\n'.join(sorted(stamps))
