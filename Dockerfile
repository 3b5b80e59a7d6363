# The example project's image: daphne serving project.asgi:application on port 8000 (and, in
# docker-compose.yml, manage.py wscommands_engine serving /ws/ on port 8001).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY manage.py pyproject.toml ./
COPY wscommands wscommands
COPY project project
COPY deploy deploy
# collectstatic needs settings, hence a key: a throwaway one, never kept in the image.
RUN useradd --create-home app \
    && DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
       python manage.py collectstatic --noinput
USER app
EXPOSE 8000 8001
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "project.asgi:application"]
