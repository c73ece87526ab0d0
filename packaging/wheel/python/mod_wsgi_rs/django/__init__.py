"""A Django application that adds ``manage.py runwsgi``.

Add ``'mod_wsgi_rs.django'`` to ``INSTALLED_APPS``; ``manage.py runwsgi
[OPTIONS]`` then serves the project's ``WSGI_APPLICATION`` with
``wsgi-standalone start-server``, as mod_wsgi's ``runmodwsgi`` does with
mod_wsgi-express.
"""
