# The example application of the README: a plain WSGI app with a few
# routes that show what the host passes in.

import json


def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path == '/environ':
        body = json.dumps({k: v for k, v in environ.items() if isinstance(v, (str, bool, int))},
                          indent=1, sort_keys=True).encode()
        content_type = 'application/json'
    else:
        body = b'Hello world!'
        content_type = 'text/plain'
    start_response('200 OK', [('Content-Type', content_type), ('Content-Length', str(len(body)))])
    return [body]
