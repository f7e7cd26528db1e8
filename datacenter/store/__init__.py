"""The data-centre store: SQLAlchemy Core tables, Alembic migrations, the tenant scope.

``tables`` defines the schema, ``engine`` opens and migrates it, ``scoped`` is the only way to
read a tenant's calls, ``commands`` holds `datacenter init`.
"""
